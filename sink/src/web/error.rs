//! What can go wrong serving a request, and the response each gets: a page (escaped) for
//! browsers, JSON under `/api/`. Database details are logged, not shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No such site, group or page.
    #[error("{0}")]
    NotFound(String),
    /// A parameter out of bounds or malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// No database connection could be had.
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl WebError {
    /// Its HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Db(_) | WebError::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the client is told: the message for its own mistakes, a generic line otherwise.
    pub fn public_message(&self) -> String {
        match self {
            WebError::NotFound(m) | WebError::BadRequest(m) => m.clone(),
            WebError::Db(_) | WebError::Pool(_) => {
                "the database cannot be read right now; try again shortly".into()
            }
        }
    }

    fn log(&self) {
        if matches!(self, WebError::Db(_) | WebError::Pool(_)) {
            tracing::warn!(error = %self, "web request failed");
        }
    }
}

/// An error answered as an HTML page.
impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let page = super::pages::error_page(status, &self.public_message());
        (status, page).into_response()
    }
}

/// An error answered as JSON (the API's form).
#[derive(Debug)]
pub struct ApiError(pub WebError);

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        ApiError(e)
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApiError(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = self.0.status();
        let body = serde_json::json!({ "error": self.0.public_message() });
        (status, axum::Json(body)).into_response()
    }
}
