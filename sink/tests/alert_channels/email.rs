//! The email channel against the SMTP receiver: plain, STARTTLS and TLS, and failures.

use serde_json::json;
use sitewatch_sink::alerts::channel::DeliveryError;
use sitewatch_tests::smtp::{acceptor, Security, SmtpReceiver};

use super::{channel, resolve, trigger, WAIT};

#[tokio::test]
async fn email_reaches_an_smtp_server_with_subject_and_details() {
    let smtp = SmtpReceiver::start();
    let ch = channel(
        json!({"type": "email", "host": "127.0.0.1", "port": smtp.port(), "tls": "none",
               "username": "sitewatch", "password": "${SMTP_PASSWORD}",
               "from": "sitewatch <alerts@example.com>",
               "to": ["ops@example.com", "Web Team <web@example.com>"]}),
        &[("SMTP_PASSWORD", "pa55")],
    );
    ch.deliver(&trigger()).await.unwrap();
    ch.deliver(&trigger()).await.unwrap(); // delivered twice: the same Message-ID
    ch.deliver(&resolve()).await.unwrap();
    let mails = smtp.wait_for(3, WAIT);
    assert_eq!(mails.len(), 3);
    let m = &mails[0];
    assert_eq!(m.from, "alerts@example.com");
    assert_eq!(m.to, vec!["ops@example.com", "web@example.com"]);
    assert_eq!(m.auth, Some(("sitewatch".into(), "pa55".into())));
    assert_eq!(
        m.header("Subject").unwrap(),
        "[sitewatch] DOWN shop: shop is down from eu, us: timed out after 5s"
    );
    let body = m.body();
    assert!(body.contains("First error: timed out after 5s"), "{body}");
    assert!(body.contains("Locations: eu, us"), "{body}");
    assert!(body.contains("URL: https://shop.example/"), "{body}");
    assert_eq!(m.header("Message-ID"), mails[1].header("Message-ID"));
    assert_ne!(m.header("Message-ID"), mails[2].header("Message-ID"));
    assert!(mails[2]
        .header("Subject")
        .unwrap()
        .starts_with("[sitewatch] RESOLVED shop"));
    assert!(
        mails[2].body().contains("Duration: 4m"),
        "{}",
        mails[2].body()
    );
}

#[tokio::test]
async fn email_goes_over_starttls_and_tls_checking_the_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let acceptor = || acceptor(&cert.cert.pem(), &cert.key_pair.serialize_pem());
    for (mode, security) in [
        ("starttls", Security::StartTls(acceptor())),
        ("tls", Security::Tls(acceptor())),
    ] {
        let smtp = SmtpReceiver::start_with(security);
        let config = |ca_file: Option<&std::path::Path>| {
            let mut c = json!({"type": "email", "host": "127.0.0.1", "port": smtp.port(),
                               "tls": mode, "username": "u", "password": "p",
                               "from": "alerts@example.com", "to": ["ops@example.com"],
                               "timeout": "5s"});
            if let Some(path) = ca_file {
                c["ca_file"] = path.to_str().unwrap().into();
            }
            channel(c, &[])
        };
        // Without the CA the self-signed certificate is refused: nothing is sent.
        let e = config(None).deliver(&trigger()).await.unwrap_err();
        assert!(e.is_retry(), "{mode}: {e}");
        assert!(
            smtp.mails().is_empty(),
            "{mode}: sent to an untrusted server"
        );
        config(Some(&ca)).deliver(&trigger()).await.unwrap();
        let mails = smtp.wait_for(1, WAIT);
        assert_eq!(mails.len(), 1, "{mode}");
        assert!(mails[0].tls, "{mode}: not encrypted");
        assert_eq!(mails[0].auth, Some(("u".into(), "p".into())), "{mode}");
        assert!(
            mails[0].header("Subject").unwrap().contains("DOWN shop"),
            "{mode}"
        );
    }
}

#[tokio::test]
async fn email_failures_are_classified_by_smtp_reply() {
    let smtp = SmtpReceiver::start();
    let ch = channel(
        json!({"type": "email", "host": "127.0.0.1", "port": smtp.port(), "tls": "none",
               "from": "alerts@example.com", "to": ["ops@example.com"], "timeout": "2s"}),
        &[],
    );
    smtp.reject_with("451 4.3.0 try again later");
    assert!(ch.deliver(&trigger()).await.unwrap_err().is_retry());
    smtp.reject_with("550 5.7.1 relaying denied");
    let e = ch.deliver(&trigger()).await.unwrap_err();
    assert!(matches!(e, DeliveryError::Permanent(_)), "{e}");
    let port = sitewatch_tests::free_port();
    let ch = channel(
        json!({"type": "email", "host": "127.0.0.1", "port": port, "tls": "none",
               "from": "alerts@example.com", "to": ["ops@example.com"]}),
        &[],
    );
    assert!(ch.deliver(&trigger()).await.unwrap_err().is_retry());
}
