//! `petrel`: the broker, the name server, both in one process, and the admin CLI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use petrel::admin::{self, AdminCommand};
use petrel::config::Config;
use petrel::process::{self, Role};

#[derive(Parser)]
#[command(
    name = "petrel",
    version,
    about = "Thread-per-core broker speaking RocketMQ's protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ServerArgs {
    /// broker.conf file (Java properties, RocketMQ key names).
    #[arg(short = 'c', long = "configFile")]
    config: Option<PathBuf>,
    /// Override one key, e.g. `-p listenPort=0`; repeatable.
    #[arg(short = 'p', long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// The name server.
    Namesrv(ServerArgs),
    /// A broker: one shard per core.
    Broker(ServerArgs),
    /// Name server and broker in one process.
    Standalone(ServerArgs),
    /// mqadmin-style administration.
    Admin {
        #[command(flatten)]
        credentials: admin::CredentialArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let cli = Cli::parse_from(admin::mqadmin_args(std::env::args_os()));
    let result = match cli.command {
        Command::Namesrv(args) => serve(Role::Namesrv, args),
        Command::Broker(args) => serve(Role::Broker, args),
        Command::Standalone(args) => serve(Role::Standalone, args),
        Command::Admin {
            credentials,
            command,
        } => {
            // A command-line tool: output cut short by its reader (`| head`) ends it quietly,
            // as for any Unix tool, instead of failing a write.
            // SAFETY: setting a signal's disposition to its default at start, single-threaded.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            credentials.apply().and_then(|()| admin::run(command))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("petrel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(role: Role, args: ServerArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref(), &args.properties)?;
    process::run(role, config)
}
