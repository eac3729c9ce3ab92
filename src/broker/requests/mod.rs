//! Request handling: the client connection loop and the dispatch of each request.

pub mod connection;
