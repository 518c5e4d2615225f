//! petrel-bench: the load generator and latency reports (issue 4). Not built yet: this binary
//! only says so, so that no script mistakes it for a measurement.

fn main() -> std::process::ExitCode {
    eprintln!("petrel-bench: the harness is not implemented yet; see README.md (\"What does not work yet\")");
    std::process::ExitCode::from(2)
}
