//! Work a running task shares with this process's idle workers, so that
//! one long document uses every core: the OCR task offers its unread pages,
//! and a worker that finds no task to claim reads one of them.
//!
//! The task keeps its claim, and with it every guarantee the queue gives a
//! claim: its heartbeat covers the helpers, each unit a helper finishes is
//! checkpointed under the task's claim (fenced by its worker id), and the
//! task completes once, when its own worker has seen every unit in. A
//! helper does one unit at a time and then looks at the queue again, so a
//! document dropped later is claimed by the next worker to come free
//! instead of waiting behind a long one.

use std::sync::{Arc, Mutex};

use super::pool::Wake;

/// A task's work that idle workers may take a part of.
pub trait Divisible: Send + Sync {
    /// Does one unit of the work on the calling thread, `worker`'s; false
    /// when there was none left to take.
    fn help(&self, worker: &str) -> bool;
}

/// The work on offer in one pool. Several offers are helped in turn, one
/// unit each, so that two long documents share the idle workers.
#[derive(Clone)]
pub struct Offers {
    open: Arc<Mutex<Vec<Arc<dyn Divisible>>>>,
    /// The pool's idle workers, and how many they are (none outside a pool).
    wake: Option<(Wake, usize)>,
}

impl Offers {
    pub(super) fn new(wake: Wake, workers: usize) -> Offers {
        Offers {
            open: Arc::default(),
            wake: Some((wake, workers)),
        }
    }

    /// Offers for helpers outside a pool (`quire process`), which look for
    /// work themselves: nothing wakes them.
    pub fn standalone() -> Offers {
        Offers {
            open: Arc::default(),
            wake: None,
        }
    }

    /// Puts `work` on offer, waking every idle worker, until the guard drops.
    pub fn offer(&self, work: Arc<dyn Divisible>) -> Offered {
        self.open.lock().unwrap().push(work.clone());
        if let Some((wake, workers)) = &self.wake {
            wake.notify_many(*workers);
        }
        Offered {
            open: self.open.clone(),
            work,
        }
    }

    /// Does one unit of the work on offer, on the calling worker's thread:
    /// the first offer's, which then goes to the back of the line. False
    /// when nothing is on offer.
    pub fn help_one(&self, worker: &str) -> bool {
        loop {
            let work = {
                let mut open = self.open.lock().unwrap();
                if open.is_empty() {
                    return false;
                }
                let work = open.remove(0);
                open.push(work.clone());
                work
            };
            if work.help(worker) {
                return true;
            }
            // Nothing left to take: no one else needs to look at it again.
            withdraw(&self.open, &work);
        }
    }
}

/// Keeps work on offer; dropping it withdraws the offer (units already
/// taken are finished by their helpers).
pub struct Offered {
    open: Arc<Mutex<Vec<Arc<dyn Divisible>>>>,
    work: Arc<dyn Divisible>,
}

impl Drop for Offered {
    fn drop(&mut self) {
        withdraw(&self.open, &self.work);
    }
}

fn withdraw(open: &Mutex<Vec<Arc<dyn Divisible>>>, work: &Arc<dyn Divisible>) {
    open.lock().unwrap().retain(|w| !Arc::ptr_eq(w, work));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Work of `n` units, counting who did them.
    struct Units {
        left: AtomicUsize,
        done: AtomicUsize,
    }

    impl Divisible for Units {
        fn help(&self, _worker: &str) -> bool {
            let took = self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                .is_ok();
            if took {
                self.done.fetch_add(1, Ordering::SeqCst);
            }
            took
        }
    }

    fn units(n: usize) -> Arc<Units> {
        Arc::new(Units {
            left: AtomicUsize::new(n),
            done: AtomicUsize::new(0),
        })
    }

    fn offers() -> Offers {
        Offers::new(Wake(crossbeam_channel::bounded(4).0), 2)
    }

    #[test]
    fn offers_are_helped_in_turn_and_withdrawn_when_done_or_dropped() {
        let offers = offers();
        let (a, b) = (units(3), units(1));
        let _a = offers.offer(a.clone());
        let offered_b = offers.offer(b.clone());
        // a, b, a: b is done; then a again.
        for _ in 0..3 {
            assert!(offers.help_one("w"));
        }
        assert_eq!(
            (a.done.load(Ordering::SeqCst), b.done.load(Ordering::SeqCst)),
            (2, 1)
        );
        drop(offered_b);
        assert!(offers.help_one("w"));
        assert_eq!(a.done.load(Ordering::SeqCst), 3);
        // Exhausted: nothing more, and nothing left on offer.
        assert!(!offers.help_one("w"));
        assert!(offers.open.lock().unwrap().is_empty());
    }
}
