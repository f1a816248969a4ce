//! sitewatch sink library (Kafka consumer → PostgreSQL writer).
