//! The events between notify's thread and the inbox thread, bounded.
//!
//! Notify reads the kernel's inotify queue as fast as events come and hands
//! each one on; the inbox thread ingests files, far slower (hashing, a
//! transaction, an fsync each). In a storm the events in between grow with
//! the number of files: a file copied in makes three or more that matter
//! (create, write, close), and ingesting it a few of its own (link count,
//! delete); 2,000 files copied in at once left some 7,000 waiting (9,400
//! before opens were left out). So they are bounded: past the bound,
//! events are dropped and noted as lost, and the inbox thread rescans the
//! inbox once it has handled those that were kept. That is what the kernel
//! does when its own queue overflows, and the recovery is the same (a file
//! found by the rescan still being written waits for the stability window).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind};

/// Events held for the inbox thread at most: as many as the kernel's own
/// queue holds by default (`fs.inotify.max_queued_events`), a few MiB.
pub const CAPACITY: usize = 16_384;

/// The inbox thread's end: the events, whether any were lost, and whether
/// the kernel's own queue overflowed.
pub struct Backlog {
    events: Receiver<notify::Result<Event>>,
    lost: Arc<AtomicBool>,
    overflowed: Arc<AtomicBool>,
}

/// Notify's end: hands each event on, or notes it lost when the backlog is
/// full. Never blocks notify's thread (which would stall the inbox thread's
/// own calls to it, such as renewing the watch).
pub struct Forward {
    tx: Sender<notify::Result<Event>>,
    lost: Arc<AtomicBool>,
    overflowed: Arc<AtomicBool>,
}

/// A backlog holding at most `capacity` events, and its sending end.
pub fn backlog(capacity: usize) -> (Forward, Backlog) {
    let (tx, events) = bounded(capacity);
    let lost = Arc::new(AtomicBool::new(false));
    let overflowed = Arc::new(AtomicBool::new(false));
    let forward = Forward {
        tx,
        lost: lost.clone(),
        overflowed: overflowed.clone(),
    };
    (
        forward,
        Backlog {
            events,
            lost,
            overflowed,
        },
    )
}

impl notify::EventHandler for Forward {
    fn handle_event(&mut self, event: notify::Result<Event>) {
        if !wanted(&event) {
            return;
        }
        // Noted here, not by the inbox thread: the event saying so may be
        // the one that finds the backlog full.
        if event.as_ref().is_ok_and(Event::need_rescan) {
            self.overflowed.store(true, Ordering::SeqCst);
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(event) {
            self.lost.store(true, Ordering::SeqCst);
        }
    }
}

/// False for the events the inbox thread has no use for (see
/// `Inbox::on_event`), so that they take no room: opens, a good part of a
/// storm (a file copied in is opened by its writer, then twice by its
/// ingest), and metadata changes (each file taken changes its link count;
/// a file being written changes its size and time, which the tracker reads
/// itself).
fn wanted(event: &notify::Result<Event>) -> bool {
    let Ok(event) = event else { return true };
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => event.need_rescan(),
        _ => true,
    }
}

impl Backlog {
    /// The events kept, oldest first.
    pub fn events(&self) -> &Receiver<notify::Result<Event>> {
        &self.events
    }

    /// Notes that events were lost elsewhere (the kernel's queue overflowed,
    /// or the watcher failed).
    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Notes that the kernel's queue overflowed.
    pub fn mark_overflowed(&self) {
        self.overflowed.store(true, Ordering::SeqCst);
    }

    /// True, once, when the kernel's queue overflowed since the last call:
    /// events for folders made meanwhile never came, so neither did their
    /// watches.
    pub fn take_overflowed(&self) -> bool {
        self.overflowed.swap(false, Ordering::SeqCst)
    }

    /// True, once, when events were lost and every event kept has been
    /// handled: the time to rescan. (The lost events came after the kept
    /// ones; rescanning earlier would only have to be done again.)
    pub fn caught_up_after_loss(&self) -> bool {
        self.events.is_empty() && self.lost.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::EventHandler;

    #[test]
    fn events_past_the_capacity_are_dropped_and_a_rescan_is_due_once_the_rest_are_handled() {
        let (mut forward, backlog) = backlog(2);
        for _ in 0..5 {
            forward.handle_event(Ok(Event::new(EventKind::Any)));
        }
        assert_eq!(backlog.events().len(), 2);
        assert!(!backlog.caught_up_after_loss(), "events still queued");
        backlog.events().recv().unwrap().unwrap();
        backlog.events().recv().unwrap().unwrap();
        assert!(backlog.caught_up_after_loss());
        assert!(!backlog.caught_up_after_loss(), "once");
    }

    #[test]
    fn opens_take_no_room_and_close_writes_do() {
        let (mut forward, backlog) = backlog(4);
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        forward.handle_event(Ok(Event::new(open)));
        forward.handle_event(Ok(Event::new(closed)));
        let kept: Vec<EventKind> = backlog
            .events()
            .try_iter()
            .map(|e| e.unwrap().kind)
            .collect();
        assert_eq!(kept, [closed]);
    }

    #[test]
    fn an_overflow_is_noted_even_when_the_backlog_has_no_room_for_its_event() {
        use notify::event::Flag;
        let (mut forward, backlog) = backlog(1);
        forward.handle_event(Ok(Event::new(EventKind::Any)));
        forward.handle_event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        assert_eq!(backlog.events().len(), 1);
        backlog.events().recv().unwrap().unwrap();
        assert!(backlog.caught_up_after_loss());
        assert!(backlog.take_overflowed());
        assert!(!backlog.take_overflowed(), "once");
    }

    #[test]
    fn nothing_lost_no_rescan() {
        let (mut forward, backlog) = backlog(2);
        forward.handle_event(Ok(Event::new(EventKind::Any)));
        backlog.events().recv().unwrap().unwrap();
        assert!(!backlog.caught_up_after_loss());
        backlog.mark_lost();
        assert!(backlog.caught_up_after_loss());
    }
}
