//! A Redis primary/replica router for a StatefulSet behind a headless service: `SET` goes to
//! ordinal 0 (`redis-0`, the primary), `GET` to the replicas (`redis-1`, `redis-2`, …) in turn.
//!
//! Run with:
//!
//! ```text
//! # against `podns serve` on 127.0.0.1:5353 serving the redis StatefulSet example:
//! cargo run -p podns-client --example redis_router -- redis-headless:6379 --server 127.0.0.1:5353
//! # inside a pod:
//! cargo run -p podns-client --example redis_router -- redis-headless:6379
//! ```
//!
//! The target is resolved with SRV (at the service name, keeping port 6379) so each endpoint
//! carries its pod hostname and ordinal. Commands are written in RESP by hand; a refused
//! connection is retried (reads only: a write never leaves the primary).

use std::net::SocketAddr;
use std::time::Duration;

use podns_client::{
    Balancer, CallError, Discovery, Endpoint, LookupKind, Ordinal, RefreshConfig, Resolver, Route,
    Target,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut target = None;
    let mut server: Option<SocketAddr> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => server = Some(args.next().ok_or("--server needs ADDR")?.parse()?),
            _ => target = Some(arg),
        }
    }
    let target = Target::parse(target.as_deref().unwrap_or("redis-headless:6379"))?
        .with_kind(LookupKind::Srv);
    let resolver = match server {
        Some(addr) => Resolver::builder()
            .server(addr)
            .pod_search("default", "cluster.local")
            .build()?,
        None => Resolver::system()?,
    };
    let discovery = Discovery::spawn(resolver, target, RefreshConfig::default());
    for endpoint in discovery.ready().await.endpoints() {
        let role = match endpoint.ordinal {
            Some(0) => "primary",
            Some(_) => "replica",
            None => "unknown (no hostname)",
        };
        println!("{endpoint}: {role}");
    }
    let router = Balancer::new(discovery, Ordinal::new());

    for i in 0..3 {
        let key = format!("podns:example:{i}");
        let value = format!("value-{i}");
        let reply = router
            .call(Route::write(), |e| {
                command(e, vec!["SET".into(), key.clone(), value.clone()])
            })
            .await;
        print_reply(&format!("SET {key} {value}"), reply);
    }
    for i in 0..6 {
        let key = format!("podns:example:{}", i % 3);
        let reply = router
            .call(Route::read(), |e| {
                command(e, vec!["GET".into(), key.clone()])
            })
            .await;
        print_reply(&format!("GET {key}"), reply);
    }
    Ok(())
}

fn print_reply(what: &str, reply: Result<(Endpoint, String), CallError<std::io::Error>>) {
    match reply {
        Ok((endpoint, reply)) => println!("{what:<28} → {endpoint}: {reply}"),
        Err(error) => println!("{what:<28} → failed: {error}"),
    }
}

/// Sends one command as a RESP array of bulk strings; returns the endpoint and the reply.
async fn command(endpoint: Endpoint, args: Vec<String>) -> std::io::Result<(Endpoint, String)> {
    let io = async {
        let mut stream = BufReader::new(TcpStream::connect(endpoint.addr).await?);
        let mut request = format!("*{}\r\n", args.len());
        for arg in &args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.get_mut().write_all(request.as_bytes()).await?;
        let reply = read_reply(&mut stream).await?;
        Ok((endpoint, reply))
    };
    tokio::time::timeout(Duration::from_secs(5), io)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Reads one RESP reply: simple string, error, integer or bulk string.
async fn read_reply(stream: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1.min(line.len()));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        // A replica refuses writes with `-READONLY`: not a connection failure, not retried.
        "-" => Ok(format!("error: {rest}")),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| bad(line))?;
            if len < 0 {
                return Ok("(nil)".to_owned());
            }
            let mut data = vec![0; usize::try_from(len).map_err(|_| bad(line))? + 2];
            stream.read_exact(&mut data).await?;
            data.truncate(data.len() - 2);
            Ok(format!("{:?}", String::from_utf8_lossy(&data)))
        }
        _ => Err(bad(line)),
    }
}

fn bad(line: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("bad RESP reply: {line:?}"),
    )
}
