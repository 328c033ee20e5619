//! The real `upkeep` binary, driven as a process: the admin commands and `serve`
//! (`commands`), and the operator's experience of directories, options and logs (`operator`).

mod commands;
mod licensing;
mod operator;
