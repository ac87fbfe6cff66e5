//! The `verge` command: read the configuration (embedded default, optional file, flags), check it,
//! and run the edge.

use clap::Parser;
use std::process::ExitCode;
use verge::config::{Config, DEFAULT_TOML};
use verge::units::{parse_size, ByteSize};

/// Verge: a self-hosted CDN edge node (sharded, thread-per-core caching HTTP proxy).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file, read over the embedded defaults (see --print-default-config).
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// The origin to forward to, e.g. http://127.0.0.1:8000 (overrides origin.url).
    #[arg(long, value_name = "URL")]
    origin: Option<String>,
    /// Viewer listener address; repeatable (overrides server.listen).
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Number of shards (executors, one per core); 0 = every CPU this process may use.
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// RAM tier budget, e.g. 512MiB (overrides cache.ram).
    #[arg(long, value_name = "SIZE")]
    ram: Option<String>,
    /// Disk tier location and size, PATH=SIZE (e.g. /var/cache/verge=100GiB); repeatable
    /// (overrides cache.disk).
    #[arg(long, value_name = "PATH=SIZE")]
    disk: Vec<String>,
    /// TLS viewer listener address (HTTP/1.1, and HTTP/2 by ALPN); repeatable (overrides tls.listen).
    #[arg(long, value_name = "ADDR")]
    tls_listen: Vec<String>,
    /// Default TLS certificate chain, PEM (overrides tls.cert).
    #[arg(long, value_name = "FILE")]
    cert: Option<String>,
    /// Private key of --cert, PEM (overrides tls.key).
    #[arg(long, value_name = "FILE")]
    key: Option<String>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

fn load(cli: &Cli) -> Result<Config, String> {
    let mut cfg = match &cli.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(o) = &cli.origin {
        cfg.origin.url = o.clone();
    }
    if !cli.listen.is_empty() {
        cfg.server.listen = cli.listen.clone();
    }
    if let Some(n) = cli.shards {
        cfg.server.shards = n;
    }
    if !cli.tls_listen.is_empty() {
        cfg.tls.listen = cli.tls_listen.clone();
    }
    if let Some(c) = &cli.cert {
        cfg.tls.cert = c.clone();
    }
    if let Some(k) = &cli.key {
        cfg.tls.key = k.clone();
    }
    if !cli.disk.is_empty() {
        cfg.cache.disk = cli.disk.clone();
    }
    if let Some(r) = &cli.ram {
        cfg.cache.ram = ByteSize(parse_size(r).map_err(|e| format!("--ram: {e}"))?);
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_default_config {
        print!("{DEFAULT_TOML}");
        return ExitCode::SUCCESS;
    }
    let cfg = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("verge: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        // Load the TLS material too: a bad certificate should fail the check, not the start.
        if !cfg.tls.listen.is_empty() {
            if let Err(e) = verge::tls::viewer::ViewerTls::new(&cfg) {
                eprintln!("verge: tls: {e}");
                return ExitCode::from(2);
            }
        }
        if let Err(e) = verge::tls::origin::client_config(&cfg) {
            eprintln!("verge: origin tls: {e}");
            return ExitCode::from(2);
        }
        eprintln!("verge: configuration is valid");
        return ExitCode::SUCCESS;
    }
    match verge::server::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verge: {e}");
            ExitCode::from(1)
        }
    }
}
