//! Helpers shared by the end-to-end tests: starting processes, brokers and databases.
