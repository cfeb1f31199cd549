//! The worker pool: threads that claim tasks, run the processor for each
//! task's type, heartbeat while it runs, and complete, fail or release it.

mod helpers;
mod identity;
mod pool;
mod processor;
mod runner;
mod sharing;

pub use identity::{WorkerIdentity, is_dead_local_worker};
pub use pool::{Pool, Releaser, Wake};
pub use processor::{Attempt, Processor, Processors, TaskContext, TaskError};
pub use runner::panic_message;
pub use sharing::{Divisible, Offered, Offers};
