//! The real `upkeep` binary, driven as a process: the admin commands and `serve`
//! (`commands`), the operator's experience of directories, options and logs (`operator`),
//! and the release catalogue: `product …` and `release …` (`release`).

mod commands;
mod licensing;
mod operator;
mod release;
