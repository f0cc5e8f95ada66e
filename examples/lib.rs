//! Runnable examples for erpc; see `README.md` here. Each example is a complete program in
//! this folder: `cargo run -p erpc-examples --example echo`.
