//! The proxy: calls and pushes with no local route are forwarded to an
//! upstream — a session, a pool, or one chosen per request — and the upstream's answer comes
//! back as if it were local.
//!
//! What is forwarded: the service method, every meta pair in order, `X-Real-IP` (added as the
//! caller's address when the request has none), the body bytes untouched **with their codec
//! byte and transfer filters** (Go writes its own default codec byte and drops the filters).
//! What comes back: the upstream's body bytes and codec, every reply meta pair; an upstream
//! connection failure (codes 100–199) becomes `502 Bad Gateway` with the failure as the
//! cause, other statuses pass through. Each forwarded call waits on its own, so a slow
//! upstream call delays no other.
//!
//! A proxy that forwards to itself (directly or through others) would loop for ever: each hop
//! counts itself in meta `X-Erpc-Proxy-Hops` (Go peers ignore it) and a request that has made
//! [`MAX_HOPS`] is answered `508 Loop Detected`.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use erpc::proxy::Proxy;
//! use erpc::{Peer, Pool, PoolConfig};
//!
//! let upstream = Peer::builder().build()?;
//! let pool = Pool::new(&upstream, "10.0.0.2:9090", PoolConfig::default());
//! let gateway = Peer::builder().with(Proxy::to_pool(pool)).build()?;
//! gateway.listen_on("0.0.0.0:9090").await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use crate::codec::Raw;
use crate::meta;
use crate::peer::{Extension, PeerBuilder, Pool};
use crate::router::{CallCtx, PushCtx};
use crate::session::{Call, Push, Session};
use crate::status::{Code, Status};

/// The meta key counting the proxies a request went through.
pub const HOPS_KEY: &str = "X-Erpc-Proxy-Hops";
/// The most proxies a request may go through.
pub const MAX_HOPS: u32 = 8;

/// Where a forwarded message goes.
#[derive(Clone, Debug)]
pub enum Upstream {
    /// One session.
    Session(Session),
    /// A pool of sessions.
    Pool(Pool),
}

impl Upstream {
    fn call<'a>(&'a self, service_method: &'a str, body: &'a Raw) -> Call<'a, Raw, Raw> {
        match self {
            Upstream::Session(session) => session.call(service_method, body),
            Upstream::Pool(pool) => pool.call(service_method, body),
        }
    }

    fn push<'a>(&'a self, service_method: &'a str, body: &'a Raw) -> Push<'a, Raw> {
        match self {
            Upstream::Session(session) => session.push(service_method, body),
            Upstream::Pool(pool) => pool.push(service_method, body),
        }
    }
}

/// What an upstream is chosen by.
#[derive(Clone, Debug)]
pub struct Label {
    /// The id of the session the request came on.
    pub session_id: String,
    /// The original caller's address (`X-Real-IP`, or the remote address).
    pub real_ip: String,
    /// The request's service method.
    pub service_method: String,
}

type Pick = Arc<dyn Fn(&Label) -> Option<Upstream> + Send + Sync>;

/// The proxy: add it with [`PeerBuilder::with`]; it takes the router's unknown-call and
/// unknown-push fallbacks.
#[derive(Clone)]
pub struct Proxy {
    pick: Pick,
}

impl Proxy {
    /// Forwards everything to one session.
    pub fn to_session(session: Session) -> Proxy {
        Proxy::new(move |_| Some(Upstream::Session(session.clone())))
    }

    /// Forwards everything to a pool.
    pub fn to_pool(pool: Pool) -> Proxy {
        Proxy::new(move |_| Some(Upstream::Pool(pool.clone())))
    }

    /// Forwards each request where `pick` says (`None`: answered `404 Not Found`, as an
    /// unknown route).
    pub fn new(pick: impl Fn(&Label) -> Option<Upstream> + Send + Sync + 'static) -> Proxy {
        Proxy { pick: Arc::new(pick) }
    }

    fn label(&self, session: &Session, real_ip: String, service_method: &str) -> Label {
        Label {
            session_id: session.id().to_string(),
            real_ip,
            service_method: service_method.to_string(),
        }
    }
}

/// The hop count of a request, or `508` when it went round too many proxies.
fn next_hop(incoming: &meta::Meta) -> Result<u32, Status> {
    let hops = incoming
        .get_str(HOPS_KEY)
        .and_then(|h| h.parse::<u32>().ok())
        .unwrap_or(0);
    if hops >= MAX_HOPS {
        return Err(Status::with_cause(
            508,
            "Loop Detected",
            format!("the request went through {hops} proxies; a proxy forwards to itself?"),
        ));
    }
    Ok(hops + 1)
}

/// Upstream connection failures are the gateway's: `502` with the failure as the cause.
fn gateway_status(status: Status) -> Status {
    if (100..200).contains(&status.code().get()) {
        Status::with_cause(Code::BAD_GATEWAY, "Bad Gateway", status.to_string())
    } else {
        status
    }
}

/// Sets up a forwarded call or push (`$builder`, a `Call` or a `Push`, which share these
/// options) as the request in `$ctx` was: its codec byte, every meta pair in order (but the
/// hop count, replaced by `$hops`), `X-Real-IP` when it had none, its transfer filters.
macro_rules! forwarded {
    ($builder:expr, $ctx:expr, $real_ip:expr, $hops:expr) => {{
        let request = $ctx.message();
        let mut forwarded = $builder.codec(request.body_codec);
        for (key, value) in request.meta.pairs() {
            if !key.eq_ignore_ascii_case(HOPS_KEY.as_bytes()) {
                forwarded = forwarded.meta(key.clone(), value.clone());
            }
        }
        if request.meta.get(meta::REAL_IP).is_none() {
            forwarded = forwarded.meta(meta::REAL_IP, $real_ip);
        }
        forwarded = forwarded.meta(HOPS_KEY, $hops.to_string());
        for &filter in request.xfer_pipe.ids() {
            forwarded = forwarded.xfer(filter);
        }
        forwarded
    }};
}

async fn forward_call(proxy: Proxy, ctx: CallCtx, body: Raw) -> Result<Raw, Status> {
    let hops = next_hop(ctx.meta())?;
    let real_ip = ctx.real_ip();
    let label = proxy.label(ctx.session(), real_ip.clone(), ctx.service_method());
    let Some(upstream) = (proxy.pick)(&label) else {
        return Err(Status::new(Code::NOT_FOUND, "Not Found"));
    };
    let call = forwarded!(upstream.call(&label.service_method, &body), ctx, real_ip, hops);
    let reply = call.reply().await.map_err(gateway_status)?;
    for (key, value) in reply.meta.pairs() {
        ctx.set_reply_meta(key.clone(), value.clone());
    }
    ctx.set_reply_codec(reply.codec);
    Ok(reply.body)
}

async fn forward_push(proxy: Proxy, ctx: PushCtx, body: Raw) -> Result<(), Status> {
    let hops = next_hop(ctx.meta())?;
    let real_ip = ctx.real_ip();
    let label = proxy.label(ctx.session(), real_ip.clone(), ctx.service_method());
    let Some(upstream) = (proxy.pick)(&label) else {
        return Ok(());
    };
    let push = forwarded!(upstream.push(&label.service_method, &body), ctx, real_ip, hops);
    push.await.map_err(gateway_status)
}

impl Extension for Proxy {
    fn extend(self, builder: PeerBuilder) -> PeerBuilder {
        builder.routes(move |router| {
            let calls = self.clone();
            router.unknown_call(move |ctx: CallCtx, body: Raw| forward_call(calls.clone(), ctx, body));
            let pushes = self;
            router.unknown_push(move |ctx: PushCtx, body: Raw| forward_push(pushes.clone(), ctx, body));
        })
    }
}
