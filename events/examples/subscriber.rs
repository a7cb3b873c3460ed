//! Prints the instance events of one project as they happen, from a durable consumer (it
//! resumes where it stopped). `cargo run -p events --example subscriber -- <nats url> <project id>`
use async_nats::jetstream::{self, consumer::pull};
use events::envelope::{STREAM, SUBJECT_PREFIX};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let mut args = std::env::args().skip(1);
    let (url, project) =
        (args.next().ok_or("usage: subscriber <nats url> <project id>")?, args.next().ok_or("no project id")?);
    let js = jetstream::new(async_nats::connect(url).await?);
    let name = format!("instances-{project}");
    let filter_subject = format!("{SUBJECT_PREFIX}.{project}.instance.>");
    let config = pull::Config { durable_name: Some(name.clone()), filter_subject, ..Default::default() };
    let mut messages = js.get_stream(STREAM).await?.get_or_create_consumer(&name, config).await?.messages().await?;
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
