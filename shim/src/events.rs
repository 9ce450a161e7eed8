//! Task events (`/tasks/create`, `/tasks/exit`, …) forwarded to containerd,
//! in the order they were sent, by one thread.

use std::sync::mpsc::{self, Sender};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{MessageDyn, MessageFull};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::Context;

/// One event: its topic and a maker of its message (`publish` consumes the
/// message; a retry needs a fresh one).
type Event = (&'static str, Box<dyn Fn() -> Box<dyn MessageDyn> + Send>);

/// The sending side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    tx: Sender<Event>,
}

impl Events {
    /// Starts the forwarding thread for `namespace`.
    pub(crate) fn start(publisher: RemotePublisher, namespace: String) -> std::io::Result<Events> {
        let (tx, rx) = mpsc::channel::<Event>();
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(crate::SMALL_STACK)
            .spawn(move || {
                for (topic, make) in rx {
                    forward(&publisher, &namespace, topic, &*make);
                }
            })?;
        Ok(Events { tx })
    }

    /// Queues `event` on `topic`.
    pub(crate) fn send<M: MessageFull + Clone + Send>(&self, topic: &'static str, event: M) {
        let _ = self
            .tx
            .send((topic, Box::new(move || Box::new(event.clone()))));
    }
}

fn forward(
    publisher: &RemotePublisher,
    namespace: &str,
    topic: &str,
    make: &dyn Fn() -> Box<dyn MessageDyn>,
) {
    for attempt in 0..3u64 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100 * attempt));
        }
        match publisher.publish(Context::default(), topic, namespace, make()) {
            Ok(()) => return,
            Err(e) => crate::warn!("publish {topic} (attempt {}): {e}", attempt + 1),
        }
    }
}

/// A protobuf timestamp of `time`.
pub(crate) fn timestamp(time: SystemTime) -> Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
        ..Default::default()
    }
}
