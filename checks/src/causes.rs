//! An error and its causes as one line of text, for check results, logs and stored
//! delivery errors: the outer errors of hyper, reqwest and tokio-postgres say only what
//! failed ("error sending request", "error performing TLS handshake"), their causes say why.

/// `e` and its causes on one line, each cause not already in the text before it.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
