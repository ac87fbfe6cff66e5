//! An in-flight fill: one origin response being received by its owner shard and fanned out, chunk by
//! chunk, to every viewer waiting on it, on any shard.
//!
//! Invariants: every subscriber sees events in order: `Head`, then `Data`*, then exactly one of `End` or
//! `Abort` (or a single `Error` / `Bypass` instead of all of them). A subscriber that joins late first
//! receives the head and every chunk so far. A dropped subscriber (viewer gone) is forgotten at the next
//! publish and never slows or stops the fill. `Abort` means the body is incomplete: the viewer's response
//! must not end cleanly.

use super::object::ResponseMeta;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// The head of a fill's response, as subscribers need it.
#[derive(Debug)]
pub struct FillHead {
    pub meta: Arc<ResponseMeta>,
    /// Body length if the origin declared it.
    pub content_length: Option<u64>,
    /// Whether the finished object will be stored (its freshness lifetime), or why not.
    pub store: Result<Duration, &'static str>,
    /// The response's age on arrival (RFC 9111 §4.2.3 corrected_initial_age), sent as `Age`.
    pub age: Duration,
    /// Set when the answer comes from a stored response being revalidated: "stale" (refreshed by a
    /// 304, or served under stale-if-error). Replaces the follower's own Cache-Status `fwd=` reason.
    pub fwd: Option<&'static str>,
    /// Offset in the body of the first `Data` byte (a disk stream may start at the chunk holding a
    /// requested range); 0 for fills.
    pub start: u64,
    /// The body comes from the cache (a disk-only object streamed from disk), not the origin.
    pub hit: bool,
}

/// One message from a fill to a subscriber.
#[derive(Debug, Clone)]
pub enum FillEvent {
    Head(Arc<FillHead>),
    Data(Bytes),
    /// The body is complete.
    End,
    /// The origin failed mid-body: the viewer's response must be cut short.
    Abort,
    /// The origin could not be reached or answered garbage before any head: answer this status.
    Error(u16, &'static str),
    /// The response turned out uncacheable (or not for this viewer): fetch on your own.
    Bypass,
}

/// The fan-out state of one fill. Lives on the owner shard.
#[derive(Debug)]
pub struct Fill {
    head: Option<Arc<FillHead>>,
    chunks: Vec<Bytes>,
    keep_chunks: bool,
    subscribers: Vec<flume::Sender<FillEvent>>,
    max_waiters: usize,
}

impl Fill {
    pub fn new(max_waiters: usize) -> Self {
        Fill {
            head: None,
            chunks: Vec::new(),
            keep_chunks: true,
            subscribers: Vec::new(),
            max_waiters,
        }
    }

    /// Adds a subscriber, replaying what was already received. `None` when the waiting list is full
    /// (or the fill no longer keeps its chunks and so cannot replay them).
    pub fn subscribe(&mut self) -> Option<flume::Receiver<FillEvent>> {
        if self.subscribers.len() >= self.max_waiters || (!self.keep_chunks && self.head.is_some())
        {
            return None;
        }
        let (tx, rx) = flume::unbounded();
        if let Some(h) = &self.head {
            let _ = tx.send(FillEvent::Head(h.clone()));
            for c in &self.chunks {
                let _ = tx.send(FillEvent::Data(c.clone()));
            }
        }
        self.subscribers.push(tx);
        Some(rx)
    }

    pub fn subscribers(&self) -> usize {
        self.subscribers.len()
    }

    /// Sends `ev` to every live subscriber and forgets the ones that went away.
    pub fn publish(&mut self, ev: FillEvent) {
        match &ev {
            FillEvent::Head(h) => self.head = Some(h.clone()),
            FillEvent::Data(c) if self.keep_chunks => self.chunks.push(c.clone()),
            _ => {}
        }
        self.subscribers.retain(|s| s.send(ev.clone()).is_ok());
    }

    /// Keeps only the first subscriber (the viewer whose request started the fill) and tells the others
    /// to go to the origin on their own. Used when the response is not cacheable.
    pub fn bypass_all_but_first(&mut self) {
        for s in self.subscribers.iter().skip(1) {
            let _ = s.send(FillEvent::Bypass);
        }
        self.subscribers.truncate(1);
        self.stop_keeping();
    }

    /// Stops keeping chunks for late subscribers (the body will not be stored).
    pub fn stop_keeping(&mut self) {
        self.keep_chunks = false;
        self.chunks = Vec::new();
    }

    /// The chunks received so far (the stored body at `End`).
    pub fn take_chunks(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.chunks)
    }

    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::headers::Headers;

    fn head() -> Arc<FillHead> {
        Arc::new(FillHead {
            meta: Arc::new(ResponseMeta::new(
                200,
                b"OK",
                Headers::new(),
                Default::default(),
            )),
            content_length: Some(3),
            store: Ok(Duration::from_secs(1)),
            age: Duration::ZERO,
            fwd: None,
            start: 0,
            hit: false,
        })
    }

    #[test]
    fn late_subscriber_gets_replay_then_live() {
        let mut f = Fill::new(10);
        let early = f.subscribe().unwrap();
        f.publish(FillEvent::Head(head()));
        f.publish(FillEvent::Data(Bytes::from_static(b"ab")));
        let late = f.subscribe().unwrap();
        f.publish(FillEvent::Data(Bytes::from_static(b"c")));
        f.publish(FillEvent::End);
        for rx in [early, late] {
            let evs: Vec<FillEvent> = rx.drain().collect();
            assert!(matches!(evs[0], FillEvent::Head(_)));
            let body: Vec<u8> = evs
                .iter()
                .filter_map(|e| match e {
                    FillEvent::Data(b) => Some(b.to_vec()),
                    _ => None,
                })
                .flatten()
                .collect();
            assert_eq!(body, b"abc");
            assert!(matches!(evs.last(), Some(FillEvent::End)));
        }
    }

    #[test]
    fn gone_subscriber_is_dropped_and_list_is_bounded() {
        let mut f = Fill::new(2);
        let a = f.subscribe().unwrap();
        let b = f.subscribe().unwrap();
        assert!(f.subscribe().is_none());
        drop(b);
        f.publish(FillEvent::Head(head()));
        assert_eq!(f.subscribers(), 1);
        f.bypass_all_but_first();
        assert!(matches!(a.try_recv(), Ok(FillEvent::Head(_))));
    }
}
