//! Prints the instance events of one project as they happen, from a durable consumer (it
//! resumes where it stopped). `cargo run -p events --example subscriber -- <nats url> <project id>`
//!
//! A deployment with its own stream or subject prefix (`PROVISIONER_NATS_STREAM`,
//! `PROVISIONER_NATS_SUBJECT_PREFIX`) is read with the same two variables set here. A NATS
//! that asks for credentials or TLS takes the matching `ConnectOptions` (token, user and
//! password, `credentials_file`, `add_root_certificates`, ...) in place of `connect`.
use async_nats::jetstream::{self, consumer::pull};
use events::Namespace;
use events::namespace::{DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let mut args = std::env::args().skip(1);
    let (url, project) =
        (args.next().ok_or("usage: subscriber <nats url> <project id>")?, args.next().ok_or("no project id")?);
    let setting = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let namespace = Namespace::new(
        setting("PROVISIONER_NATS_STREAM", DEFAULT_STREAM),
        setting("PROVISIONER_NATS_SUBJECT_PREFIX", DEFAULT_SUBJECT_PREFIX),
    )?;
    let js = jetstream::new(async_nats::connect(url).await?);
    let name = format!("instances-{project}");
    let filter_subject = format!("{}.{project}.instance.>", namespace.events_prefix());
    let config = pull::Config { durable_name: Some(name.clone()), filter_subject, ..Default::default() };
    let stream = js.get_stream(namespace.stream()).await?;
    let mut messages = stream.get_or_create_consumer(&name, config).await?.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        match events::decode(&message.payload) {
            Ok(received) => {
                println!("{} #{} {:?}", received.envelope.event_type, received.envelope.sequence, received.event)
            }
            Err(e) => eprintln!("skipped a message: {e}"),
        }
        message.ack().await?;
    }
    Ok(())
}
