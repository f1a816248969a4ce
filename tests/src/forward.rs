//! A TCP forwarder started on demand: a bootstrap address that "comes up later".

/// Forwards connections on 127.0.0.1:`listen_port` to `target` from now on.
pub async fn forward(listen_port: u16, target: String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", listen_port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}
