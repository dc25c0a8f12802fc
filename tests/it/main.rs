//! Integration tests: the `curflow` binary run as a user runs it, on data the generator
//! makes in temporary folders. One test binary (see INFRA.md: each binary links DataFusion).

mod amqps;
mod attribution;
mod aws_profile;
mod bad_input;
mod broken_source;
mod check;
mod conformance;
mod delta_s3;
mod demo;
mod deploy;
mod fault_proxy;
mod faults;
mod fleet;
mod image;
mod interrupt;
mod isolation;
mod key_names;
mod kills;
mod leases;
mod legacy;
mod noop;
mod operator;
mod ops;
mod payers;
mod progress;
mod retention;
mod s3;
mod s3_support;
mod schema_drift;
mod snowflake;
mod snowflake_fake;
mod stage_only;
mod staging_readers;
mod support;
