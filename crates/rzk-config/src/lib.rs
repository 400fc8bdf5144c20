//! # rzk-config: zoo.cfg and myid
//! SKELETON: being written.
