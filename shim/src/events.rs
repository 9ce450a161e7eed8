//! Task events (`/tasks/create`, `/tasks/exit`, …) forwarded to containerd's
//! ttrpc events service, in the order they were sent, by one thread.
//!
//! Each event is encoded when it is sent, with its type URL written out
//! (`containerd.events.TaskExit`, …): the crate's publisher finds the name
//! through protobuf reflection, which builds descriptor tables on first use
//! and keeps them (a few hundred KiB in every shim).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim::events::{Envelope, ForwardRequest};
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::protos::{Client, EventsClient};

/// A task event and the type URL containerd knows it by.
pub(crate) trait Event: Message {
    const TYPE_URL: &'static str;
}

macro_rules! events {
    ($($t:ident),*) => {
        $(impl Event for $t {
            const TYPE_URL: &'static str = concat!("containerd.events.", stringify!($t));
        })*
    };
}

events!(
    TaskCreate,
    TaskStart,
    TaskExit,
    TaskDelete,
    TaskExecAdded,
    TaskExecStarted,
    TaskPaused,
    TaskResumed,
    TaskOOM
);

/// The sending side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    tx: Sender<(&'static str, Timestamp, Any)>,
    progress: Arc<Progress>,
}

/// How many events were queued and how many the thread has forwarded, so
/// that [`Events::flush`] can wait for the queue to empty.
#[derive(Debug, Default)]
struct Progress {
    queued: AtomicU64,
    forwarded: Mutex<u64>,
    changed: Condvar,
}

impl Events {
    /// Connects to containerd's ttrpc address and starts the forwarding
    /// thread for `namespace`.
    pub(crate) fn start(ttrpc_address: &str, namespace: String) -> anyhow::Result<Events> {
        use anyhow::Context as _;
        let fd = containerd_shim::util::connect(ttrpc_address)
            .with_context(|| format!("connect to {ttrpc_address}"))?;
        let client = EventsClient::new(Client::new(fd).context("ttrpc client")?);
        let (tx, rx) = mpsc::channel::<(&'static str, Timestamp, Any)>();
        let progress = Arc::new(Progress::default());
        let done = Arc::clone(&progress);
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(crate::SMALL_STACK)
            .spawn(move || {
                for (topic, timestamp, event) in rx {
                    let request = ForwardRequest {
                        envelope: MessageField::some(Envelope {
                            timestamp: MessageField::some(timestamp),
                            namespace: namespace.clone(),
                            topic: topic.to_owned(),
                            event: MessageField::some(event),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    forward(&client, topic, &request);
                    *done.forwarded.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    done.changed.notify_all();
                }
            })?;
        Ok(Events { tx, progress })
    }

    /// Events that go to the returned receiver instead of containerd.
    #[cfg(test)]
    pub(crate) fn for_test() -> (Events, mpsc::Receiver<(&'static str, Timestamp, Any)>) {
        let (tx, rx) = mpsc::channel();
        let progress = Arc::new(Progress::default());
        (Events { tx, progress }, rx)
    }

    /// Waits (at most `timeout`) until every event queued so far reached
    /// containerd: the shim exits right after `Shutdown`, and the
    /// `TaskDelete` that came just before must not be lost with it.
    pub(crate) fn flush(&self, timeout: Duration) {
        let target = self.progress.queued.load(Ordering::SeqCst);
        let forwarded = self
            .progress
            .forwarded
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _ = self
            .progress
            .changed
            .wait_timeout_while(forwarded, timeout, |n| *n < target);
    }

    /// Queues `event` on `topic`.
    pub(crate) fn send<E: Event>(&self, topic: &'static str, event: E) {
        let any = match event.write_to_bytes() {
            Ok(value) => Any {
                type_url: E::TYPE_URL.to_owned(),
                value,
                ..Default::default()
            },
            Err(e) => {
                crate::warn!("encode {}: {e}", E::TYPE_URL);
                return;
            }
        };
        self.progress.queued.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send((topic, timestamp(SystemTime::now()), any));
    }
}

fn forward(client: &EventsClient, topic: &str, request: &ForwardRequest) {
    for attempt in 0..3u64 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100 * attempt));
        }
        match client.forward(Context::default(), request) {
            Ok(_) => return,
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

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::MessageFull;

    #[test]
    fn type_urls_are_the_message_names() {
        assert_eq!(TaskExit::TYPE_URL, TaskExit::descriptor().full_name());
        assert_eq!(TaskOOM::TYPE_URL, TaskOOM::descriptor().full_name());
        assert_eq!(
            TaskExecAdded::TYPE_URL,
            TaskExecAdded::descriptor().full_name()
        );
    }
}
