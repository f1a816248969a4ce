//! Alerts through the sink's batch pipeline and its dispatcher, against a real PostgreSQL
//! and real local webhook receivers (HTTP on 127.0.0.1): a global outage gives exactly one
//! trigger and one resolve per channel (also when batches are redelivered), a regional
//! fault none, a receiver failing its first three attempts gets the notification after
//! retries, a silence or a maintenance window sends nothing (and the pages show the
//! maintenance), two dispatchers on one database send each notification once, reminders
//! and one flapping notice, Alertmanager firing then resolved, and the sweep's resolve.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

#[path = "../support/mod.rs"]
mod support;

mod alertmanager;
mod delivery;
mod outage;
mod quiet;
mod sim;
