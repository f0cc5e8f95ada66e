//! A small etcd v3 client: the key-value reads and writes, leases and watches that
//! registration and resolution need, as gRPC calls over a tonic channel (plain HTTP/2).
//!
//! Unary requests are bounded by the client's request timeout; the two streams (lease
//! keep-alive and watch) live until their owner drops them or etcd ends them. The channel
//! reconnects by itself; a stream that breaks is restarted by its owner.

pub(crate) mod api;

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use crate::DiscoveryError;
use api::*;

const RANGE: &str = "/etcdserverpb.KV/Range";
const PUT: &str = "/etcdserverpb.KV/Put";
const LEASE_GRANT: &str = "/etcdserverpb.Lease/LeaseGrant";
const LEASE_REVOKE: &str = "/etcdserverpb.Lease/LeaseRevoke";
const LEASE_KEEP_ALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";
const WATCH: &str = "/etcdserverpb.Watch/Watch";

/// How often an HTTP/2 ping checks the connection to etcd.
const HTTP2_PING_EVERY: Duration = Duration::from_secs(10);

/// Most bytes one etcd response may have: far above what a service's registrations take, and
/// a bound on what a misbehaving etcd can make this process allocate.
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// A connection to an etcd cluster (one or more endpoints). Cheap to clone.
#[derive(Clone)]
pub struct Etcd {
    channel: Channel,
    endpoints: String,
    timeout: Duration,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd").field("endpoints", &self.endpoints).finish()
    }
}

impl Etcd {
    /// Connects to etcd at `endpoints` (`host:port` each) and checks it answers within
    /// `timeout`, which then bounds every unary request.
    pub async fn connect(endpoints: &[String], timeout: Duration) -> Result<Etcd, DiscoveryError> {
        let joined = endpoints.join(",");
        if endpoints.is_empty() {
            return Err(DiscoveryError::Invalid("no etcd endpoint given".into()));
        }
        let mut list = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let parsed = Endpoint::from_shared(format!("http://{endpoint}")).map_err(|e| {
                DiscoveryError::Invalid(format!("{endpoint:?} is not an etcd endpoint (host:port): {e}"))
            })?;
            // HTTP/2 pings on the otherwise quiet watch and keep-alive streams: a connection
            // to an etcd that vanished without closing it (a partition, a dead host) fails
            // within a ping and its timeout, and the stream's owner reopens it.
            list.push(
                parsed
                    .connect_timeout(timeout)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(HTTP2_PING_EVERY)
                    .keep_alive_timeout(timeout)
                    .keep_alive_while_idle(true),
            );
        }
        let channel = if list.len() == 1 {
            list.remove(0).connect_lazy()
        } else {
            Channel::balance_list(list.into_iter())
        };
        let etcd = Etcd {
            channel,
            endpoints: joined,
            timeout,
        };
        // A range over one unlikely key: proves etcd answers before anything relies on it.
        etcd.range(b"\0erpc-discovery-ping", b"", 1).await?;
        Ok(etcd)
    }

    /// The endpoints, as given (for messages).
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    fn grpc(&self) -> tonic::client::Grpc<Channel> {
        tonic::client::Grpc::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    fn failed(&self, what: &str, why: impl std::fmt::Display) -> DiscoveryError {
        DiscoveryError::Etcd(format!(
            "etcd at {} failed to {what}: {why}; check that etcd is running and reachable",
            self.endpoints
        ))
    }

    async fn unary<Req, Resp>(&self, path: &'static str, what: &str, request: Req) -> Result<Resp, DiscoveryError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = self.grpc();
        let call = async {
            grpc.ready().await.map_err(|e| self.failed(what, e))?;
            grpc.unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.failed(what, status.message()))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| self.failed(what, format_args!("no answer within {:?}", self.timeout)))?
    }

    /// Whether `key` exists (for tests and tools that check a registration).
    pub async fn exists(&self, key: &str) -> Result<bool, DiscoveryError> {
        Ok(!self.range(key.as_bytes(), b"", 1).await?.kvs.is_empty())
    }

    /// The registration keys of `service` now.
    pub async fn service_keys(&self, service: &str) -> Result<Vec<String>, DiscoveryError> {
        let prefix = crate::instance::service_prefix(service);
        let listed = self.range(prefix.as_bytes(), &prefix_end(prefix.as_bytes()), 0).await?;
        Ok(listed
            .kvs
            .iter()
            .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
            .collect())
    }

    /// The keys in `[key, range_end)` (`range_end` empty: `key` alone), at most `limit` (0: all).
    pub(crate) async fn range(
        &self,
        key: &[u8],
        range_end: &[u8],
        limit: i64,
    ) -> Result<RangeResponse, DiscoveryError> {
        self.unary(
            RANGE,
            "read keys",
            RangeRequest {
                key: key.to_vec(),
                range_end: range_end.to_vec(),
                limit,
            },
        )
        .await
    }

    /// Writes `key` = `value`, attached to `lease` (0: none).
    pub(crate) async fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<(), DiscoveryError> {
        let _: PutResponse = self
            .unary(
                PUT,
                "write a key",
                PutRequest {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    lease,
                },
            )
            .await?;
        Ok(())
    }

    /// A new lease of `ttl` seconds; its id.
    pub(crate) async fn grant(&self, ttl: i64) -> Result<i64, DiscoveryError> {
        let granted: LeaseGrantResponse = self
            .unary(LEASE_GRANT, "grant a lease", LeaseGrantRequest { ttl, id: 0 })
            .await?;
        if !granted.error.is_empty() {
            return Err(self.failed("grant a lease", granted.error));
        }
        Ok(granted.id)
    }

    /// Revokes `lease`, deleting the keys attached to it.
    pub(crate) async fn revoke(&self, lease: i64) -> Result<(), DiscoveryError> {
        let _: LeaseRevokeResponse = self
            .unary(LEASE_REVOKE, "revoke a lease", LeaseRevokeRequest { id: lease })
            .await?;
        Ok(())
    }

    /// Opens a keep-alive stream: each request sent on `requests` renews its lease; each
    /// response says the lease's remaining TTL (0 or less: it is gone).
    pub(crate) async fn keep_alive(
        &self,
        requests: impl Stream<Item = LeaseKeepAliveRequest> + Send + 'static,
    ) -> Result<tonic::Streaming<LeaseKeepAliveResponse>, DiscoveryError> {
        self.stream(LEASE_KEEP_ALIVE, "keep a lease alive", requests).await
    }

    /// Opens a watch of `[key, range_end)` from `start_revision`.
    pub(crate) async fn watch(
        &self,
        key: &[u8],
        range_end: &[u8],
        start_revision: i64,
    ) -> Result<tonic::Streaming<WatchResponse>, DiscoveryError> {
        let create = WatchRequest {
            create_request: Some(WatchCreateRequest {
                key: key.to_vec(),
                range_end: range_end.to_vec(),
                start_revision,
            }),
        };
        // The request stream stays open after the one request: closing it would end the watch.
        let requests = futures_util::stream::once(std::future::ready(create)).chain(futures_util::stream::pending());
        self.stream(WATCH, "watch keys", requests).await
    }

    async fn stream<Req, Resp>(
        &self,
        path: &'static str,
        what: &str,
        requests: impl Stream<Item = Req> + Send + 'static,
    ) -> Result<tonic::Streaming<Resp>, DiscoveryError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = self.grpc();
        let open = async {
            grpc.ready().await.map_err(|e| self.failed(what, e))?;
            grpc.streaming(
                tonic::Request::new(requests),
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.failed(what, status.message()))
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .map_err(|_| self.failed(what, format_args!("no answer within {:?}", self.timeout)))?
    }
}

/// The end of the range of every key that starts with `prefix`: the prefix with its last byte
/// that is not 0xff incremented, and what follows it dropped (etcd's convention; `\0` means
/// "to the end of the key space").
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_range_ends_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"erpc/svc/"), b"erpc/svc0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
