//! The router: which handler answers which service method.
//!
//! ```
//! use erpc::router::{CallCtx, Router};
//! use erpc::Status;
//!
//! async fn add(ctx: CallCtx, nums: Vec<i64>) -> Result<i64, Status> {
//!     if let Some(author) = ctx.meta_str("author") {
//!         ctx.set_reply_meta("author", author.to_string());
//!     }
//!     Ok(nums.iter().sum())
//! }
//!
//! let mut router = Router::new();
//! router.group("math").call("add", add);               // "/math/add"
//! router.call_at("Hello.Say", |text: String| async move { Ok(text) });
//! assert!(router.routes().any(|r| r == "/math/add"));
//! ```
//!
//! Names given to [`Router::call`], [`Router::push`] and [`Router::group`] go through the
//! router's [`NameMapper`] as in Go (`math` + `add` → `/math/add` with the HTTP mapper,
//! `math.add` with the RPC one); [`Router::call_at`] and [`Router::push_at`] take a route
//! verbatim. Handlers from a type's methods come from `#[erpc::service]` (see [`Service`]).
//! Unknown calls get `404 Not Found` unless a fallback is set with [`Router::unknown_call`];
//! unknown pushes are dropped unless [`Router::unknown_push`] is set.

mod binder;
mod ctx;
mod dispatch;
mod handler;
mod layer;
pub mod mapper;

pub use crate::plugin::{HandlerInfo, HandlerKind};
#[cfg(feature = "binder")]
pub(crate) use binder::invalid_parameter as binder_status;
#[cfg(feature = "binder")]
#[cfg_attr(docsrs, doc(cfg(feature = "binder")))]
pub use binder::{BindMeta, Valid};
pub use ctx::{CallCtx, PushCtx};
pub use handler::{CallHandler, PushHandler};
pub use layer::{HandlerCtx, HandlerService, Request, Response, RouteLayer};
pub use mapper::NameMapper;

pub(crate) use dispatch::Dispatcher;
pub(crate) use handler::{ErasedCall, ErasedPush};

use std::marker::PhantomData;
use std::sync::Arc;

use handler::{CallFn, PushFn};
use layer::ErasedLayer;
use rustc_hash::FxHashMap;

use crate::observe::RouteMetrics;
use crate::plugin::{Plugin, Plugins};

pub(crate) struct Route<H: ?Sized> {
    pub(crate) handler: Arc<H>,
    pub(crate) plugins: Plugins,
    pub(crate) info: HandlerInfo,
    /// Registered when the peer is built (after the recorder is installed).
    pub(crate) metrics: RouteMetrics,
}

impl<H: ?Sized> Clone for Route<H> {
    fn clone(&self) -> Self {
        Route {
            handler: self.handler.clone(),
            plugins: self.plugins.clone(),
            info: self.info.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The frozen route table a running peer looks routes up in.
#[derive(Default)]
pub(crate) struct Routes {
    pub(crate) calls: FxHashMap<String, Route<dyn ErasedCall>>,
    pub(crate) pushes: FxHashMap<String, Route<dyn ErasedPush>>,
    pub(crate) unknown_call: Option<Route<dyn ErasedCall>>,
    pub(crate) unknown_push: Option<Route<dyn ErasedPush>>,
}

impl Routes {
    /// Puts the peer's plugins in front of every route's own.
    pub(crate) fn with_peer_plugins(mut self, peer: &Plugins) -> Result<Self, crate::Status> {
        for route in self.calls.values_mut().chain(self.unknown_call.iter_mut()) {
            route.plugins = peer.with(&route.plugins.iter().cloned().collect::<Vec<_>>())?;
        }
        for route in self.pushes.values_mut().chain(self.unknown_push.iter_mut()) {
            route.plugins = peer.with(&route.plugins.iter().cloned().collect::<Vec<_>>())?;
        }
        Ok(self)
    }

    pub(crate) fn infos(&self) -> impl Iterator<Item = &HandlerInfo> {
        self.calls
            .values()
            .map(|r| &r.info)
            .chain(self.pushes.values().map(|r| &r.info))
    }
}

/// Collects routes before a peer is built. See the [module docs](self).
pub struct Router {
    mapper: NameMapper,
    routes: Routes,
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl Router {
    /// An empty router with the HTTP-style name mapper (`/a/b`), Go's default.
    pub fn new() -> Self {
        Router::with_mapper(NameMapper::Http)
    }

    /// An empty router with the given name mapper.
    pub fn with_mapper(mapper: NameMapper) -> Self {
        Router {
            mapper,
            routes: Routes::default(),
        }
    }

    /// The name mapper.
    pub fn mapper(&self) -> NameMapper {
        self.mapper
    }

    /// A sub-route group: names registered on it are prefixed with `prefix` (mapped).
    pub fn group(&mut self, prefix: &str) -> Group<'_> {
        let prefix = self.mapper.route(&self.mapper.root(), prefix);
        Group {
            router: self,
            prefix,
            plugins: Vec::new(),
            layers: Vec::new(),
        }
    }

    /// Registers a CALL handler under `name`, mapped like Go (`add` → `/add`).
    pub fn call<H: CallHandler<M>, M: 'static>(&mut self, name: &str, handler: H) -> &mut Self {
        let route = self.mapper.route(&self.mapper.root(), name);
        self.add_call(route, handler, &[], &[]);
        self
    }

    /// Registers a CALL handler under exactly `route` (no mapping, no prefix).
    pub fn call_at<H: CallHandler<M>, M: 'static>(&mut self, route: &str, handler: H) -> &mut Self {
        self.add_call(route.to_string(), handler, &[], &[]);
        self
    }

    /// Registers a PUSH handler under `name`, mapped like Go.
    pub fn push<H: PushHandler<M>, M: 'static>(&mut self, name: &str, handler: H) -> &mut Self {
        let route = self.mapper.route(&self.mapper.root(), name);
        self.add_push(route, handler, &[], &[]);
        self
    }

    /// Registers a PUSH handler under exactly `route`.
    pub fn push_at<H: PushHandler<M>, M: 'static>(&mut self, route: &str, handler: H) -> &mut Self {
        self.add_push(route.to_string(), handler, &[], &[]);
        self
    }

    /// Registers every method of a service type (see [`Service`]).
    pub fn service<S: Service>(&mut self, service: S) -> &mut Self {
        let mut root = Group {
            prefix: self.mapper.root(),
            router: self,
            plugins: Vec::new(),
            layers: Vec::new(),
        };
        Arc::new(service).register(&mut root);
        self
    }

    /// The fallback for CALLs to unknown routes. Take the body as [`Raw`](crate::Raw) to see
    /// it undecoded (`ctx.body_codec()` says how to decode it).
    pub fn unknown_call<H: CallHandler<M>, M: 'static>(&mut self, handler: H) -> &mut Self {
        self.routes.unknown_call = Some(Route {
            handler: Arc::new(CallFn {
                handler,
                _shape: PhantomData,
            }),
            plugins: Plugins::default(),
            metrics: RouteMetrics::default(),
            info: HandlerInfo {
                name: String::new(),
                kind: HandlerKind::Call,
                unknown: true,
                arg_type: std::any::type_name::<H::Arg>(),
            },
        });
        self
    }

    /// The fallback for PUSHes to unknown routes.
    pub fn unknown_push<H: PushHandler<M>, M: 'static>(&mut self, handler: H) -> &mut Self {
        self.routes.unknown_push = Some(Route {
            handler: Arc::new(PushFn {
                handler,
                _shape: PhantomData,
            }),
            plugins: Plugins::default(),
            metrics: RouteMetrics::default(),
            info: HandlerInfo {
                name: String::new(),
                kind: HandlerKind::Push,
                unknown: true,
                arg_type: std::any::type_name::<H::Arg>(),
            },
        });
        self
    }

    /// Wraps every route registered so far (and the fallbacks) in a tower layer; the layer
    /// sees a [`Request`] and produces a [`Response`], and its errors reach the caller as
    /// statuses (a [`Status`](crate::Status) error as is; tower's timeout as `408`, load shedding as `503`,
    /// anything else as `500`). Layers added later wrap the earlier ones.
    ///
    /// ```
    /// use std::time::Duration;
    /// use erpc::{Router, Status};
    ///
    /// let mut router = Router::new();
    /// router.call("add", |nums: Vec<i64>| async move { Ok::<_, Status>(nums.iter().sum::<i64>()) });
    /// router.layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(1)));
    /// ```
    ///
    /// Plugins and layers: plugins are Go's hooks at fixed points of every message (before the
    /// route is known, before and after the body is decoded, around writes) and can refuse or
    /// rewrite messages the Go way; a layer wraps only a route's handling, with tower's
    /// ready-made policies (timeouts, concurrency limits, load shedding, rate limits).
    pub fn layer(&mut self, layer: impl RouteLayer) -> &mut Self {
        let layers: [ErasedLayer; 1] = [Arc::new(layer)];
        let routes = &mut self.routes;
        for route in routes.calls.values_mut().chain(routes.unknown_call.as_mut()) {
            route.handler = layer::wrap_call(route.handler.clone(), &layers);
        }
        for route in routes.pushes.values_mut().chain(routes.unknown_push.as_mut()) {
            route.handler = layer::wrap_push(route.handler.clone(), &layers);
        }
        self
    }

    /// Every registered route (CALL and PUSH), in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = &str> {
        self.routes
            .calls
            .keys()
            .chain(self.routes.pushes.keys())
            .map(String::as_str)
    }

    pub(crate) fn into_routes(self) -> Routes {
        self.routes
    }

    fn add_call<H: CallHandler<M>, M: 'static>(
        &mut self,
        route: String,
        handler: H,
        plugins: &[Arc<dyn Plugin>],
        layers: &[ErasedLayer],
    ) {
        let info = HandlerInfo {
            name: route.clone(),
            kind: HandlerKind::Call,
            unknown: false,
            arg_type: std::any::type_name::<H::Arg>(),
        };
        let plugins = plugin_list(&route, plugins);
        let handler: Arc<dyn ErasedCall> = Arc::new(CallFn {
            handler,
            _shape: PhantomData,
        });
        let handler = layer::wrap_call(handler, layers);
        let route_entry = Route {
            handler,
            plugins,
            info,
            metrics: RouteMetrics::default(),
        };
        if self.routes.calls.insert(route.clone(), route_entry).is_some() {
            panic!("erpc: the CALL route {route:?} is registered twice; each route needs exactly one handler");
        }
    }

    fn add_push<H: PushHandler<M>, M: 'static>(
        &mut self,
        route: String,
        handler: H,
        plugins: &[Arc<dyn Plugin>],
        layers: &[ErasedLayer],
    ) {
        let info = HandlerInfo {
            name: route.clone(),
            kind: HandlerKind::Push,
            unknown: false,
            arg_type: std::any::type_name::<H::Arg>(),
        };
        let plugins = plugin_list(&route, plugins);
        let handler: Arc<dyn ErasedPush> = Arc::new(PushFn {
            handler,
            _shape: PhantomData,
        });
        let handler = layer::wrap_push(handler, layers);
        let route_entry = Route {
            handler,
            plugins,
            info,
            metrics: RouteMetrics::default(),
        };
        if self.routes.pushes.insert(route.clone(), route_entry).is_some() {
            panic!("erpc: the PUSH route {route:?} is registered twice; each route needs exactly one handler");
        }
    }
}

fn plugin_list(route: &str, plugins: &[Arc<dyn Plugin>]) -> Plugins {
    Plugins::new(plugins.to_vec()).unwrap_or_else(|status| panic!("erpc: plugins of route {route:?}: {}", status.msg()))
}

/// A sub-route group: a prefix and plugins shared by the routes registered through it.
pub struct Group<'r> {
    router: &'r mut Router,
    prefix: String,
    plugins: Vec<Arc<dyn Plugin>>,
    layers: Vec<ErasedLayer>,
}

impl Group<'_> {
    /// Adds a plugin to this group's routes (after the peer's plugins and the parent group's).
    pub fn plugin(&mut self, plugin: impl Plugin) -> &mut Self {
        self.plugins.push(Arc::new(plugin));
        self
    }

    /// Wraps the routes registered through this group from now on (and through its nested
    /// groups) in a tower layer, inside the group's earlier layers; see [`Router::layer`].
    pub fn layer(&mut self, layer: impl RouteLayer) -> &mut Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// The group's route prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A nested group.
    pub fn group(&mut self, prefix: &str) -> Group<'_> {
        let prefix = self.router.mapper.route(&self.prefix, prefix);
        let plugins = self.plugins.clone();
        let layers = self.layers.clone();
        Group {
            router: self.router,
            prefix,
            plugins,
            layers,
        }
    }

    /// Registers a CALL handler under `name` in this group.
    pub fn call<H: CallHandler<M>, M: 'static>(&mut self, name: &str, handler: H) -> &mut Self {
        let route = self.router.mapper.route(&self.prefix, name);
        self.router.add_call(route, handler, &self.plugins, &self.layers);
        self
    }

    /// Registers a PUSH handler under `name` in this group.
    pub fn push<H: PushHandler<M>, M: 'static>(&mut self, name: &str, handler: H) -> &mut Self {
        let route = self.router.mapper.route(&self.prefix, name);
        self.router.add_push(route, handler, &self.plugins, &self.layers);
        self
    }

    /// Registers every method of a service type in this group.
    pub fn service<S: Service>(&mut self, service: S) -> &mut Self {
        Arc::new(service).register(self);
        self
    }
}

/// A type whose methods are handlers. Implemented by `#[erpc::service]`, on an impl block:
///
/// ```
/// use erpc::router::{CallCtx, PushCtx, Router};
/// use erpc::Status;
///
/// struct Math;
///
/// #[erpc::service]
/// impl Math {
///     async fn add(&self, nums: Vec<i64>) -> Result<i64, Status> {
///         Ok(nums.iter().sum())
///     }
///     async fn echo(&self, ctx: CallCtx, text: String) -> Result<String, Status> {
///         Ok(format!("{text} via {}", ctx.service_method()))
///     }
///     async fn notify(&self, _ctx: PushCtx, text: String) -> Result<(), Status> {
///         println!("{text}");
///         Ok(())
///     }
///     #[erpc(skip)]
///     async fn not_a_route(&self, _: u8) {}
/// }
///
/// let mut router = Router::new();
/// router.service(Math);
/// let mut routes: Vec<_> = router.routes().collect();
/// routes.sort();
/// assert_eq!(routes, ["/math/add", "/math/echo", "/math/notify"]);
/// ```
///
/// or, for a typed client as well, on a trait (its `TraitServer<T>` is the `Service`; see
/// `examples/typed.rs`). Each `async fn` taking `&self`, optionally a context, and an argument
/// becomes a route: a PUSH when the context is a [`PushCtx`] (or the method is marked
/// `#[erpc(push)]`), a CALL otherwise. The route is Go's: mapper(mapper(prefix, TypeName),
/// MethodName), where the Rust method name is first turned into Go's CamelCase (`say_hello` →
/// `SayHello`), so a Rust service answers the same routes as a Go service of the same names.
pub trait Service: Send + Sync + 'static {
    /// Registers the service's handlers in `group`.
    fn register(self: Arc<Self>, group: &mut Group<'_>);
}
