//! # rzk-server
//! SKELETON: being written.
