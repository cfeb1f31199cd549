//! Integration tests: the real `quire` binary on real SQLite files in temp dirs.

mod util;

mod browser;
mod cli;
mod hosts;
mod http;
mod ocr;
mod parallel;
mod postgres;
mod procs;
mod reliability;
mod scans;
mod search;
mod searchable;
mod serve;
mod service;
mod storm;
mod textlayer;
