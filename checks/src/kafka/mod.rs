//! Kafka client settings and client plumbing shared by the agent (producer) and the sink
//! (consumer): one settings model, one librdkafka configuration builder, one way of
//! logging librdkafka and reading its statistics.

mod connection;
mod context;

pub use connection::{KafkaConnection, Sasl, SecurityProtocol, SslFiles};
pub use context::{broker_up, consumer_lag, KafkaContext, KafkaLog};
