//! Spreads HTTP GET requests over the pods of a headless service, round-robin.
//!
//! Run with:
//!
//! ```text
//! # against `podns serve` on 127.0.0.1:5353 serving the nginx headless example:
//! cargo run -p podns-client --example http_spread -- nginx-headless:80 --server 127.0.0.1:5353 --requests 30
//! # inside a pod (system resolver, search list from /etc/resolv.conf):
//! cargo run -p podns-client --example http_spread -- nginx-headless:80
//! ```
//!
//! Each request is a hand-written HTTP/1.1 `GET /` with `Connection: close` over a
//! `tokio::net::TcpStream`; a refused or reset connection is retried on the next pod, counts
//! toward ejecting that pod, and makes discovery re-resolve. The program prints which pod served
//! each request and a per-pod tally.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use podns_client::{
    Balancer, Discovery, Endpoint, RefreshConfig, Resolver, RoundRobin, Route, Target,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut target = None;
    let mut server: Option<SocketAddr> = None;
    let mut requests = 20usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => server = Some(args.next().ok_or("--server needs ADDR")?.parse()?),
            "--requests" => requests = args.next().ok_or("--requests needs N")?.parse()?,
            _ => target = Some(arg),
        }
    }
    let target = Target::parse(target.as_deref().unwrap_or("nginx-headless:80"))?;
    let resolver = match server {
        Some(addr) => Resolver::builder()
            .server(addr)
            .pod_search("default", "cluster.local")
            .build()?,
        None => Resolver::system()?,
    };
    let host = target.name().to_owned();
    let discovery = Discovery::spawn(resolver, target, RefreshConfig::default());
    let set = discovery.ready().await;
    println!("{} endpoints:", set.len());
    for endpoint in set.endpoints() {
        println!("  {endpoint}");
    }
    let balancer = Balancer::new(discovery, RoundRobin::new());
    let mut tally: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    for i in 0..requests {
        let result = balancer
            .call(Route::new(), |endpoint| get(endpoint, host.clone()))
            .await;
        match result {
            Ok((addr, status)) => {
                println!("request {i:>3}: {addr} answered {status}");
                *tally.entry(addr).or_default() += 1;
            }
            Err(error) => println!("request {i:>3}: failed: {error}"),
        }
    }
    println!("per endpoint:");
    for (addr, count) in tally {
        println!("  {addr}: {count}");
    }
    Ok(())
}

/// One `GET /` to one endpoint; returns the endpoint and the status line.
async fn get(endpoint: Endpoint, host: String) -> std::io::Result<(SocketAddr, String)> {
    let io = async {
        let mut stream = TcpStream::connect(endpoint.addr).await?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: podns-http-spread\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let head = String::from_utf8_lossy(&response);
        let status = head.lines().next().unwrap_or_default().to_owned();
        if !status.starts_with("HTTP/1.") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {status:?}"),
            ));
        }
        Ok((endpoint.addr, status))
    };
    tokio::time::timeout(Duration::from_secs(5), io)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}
