//! The `ignorecase` plugin: routes are matched case-insensitively.

use super::{HookResult, Plugin};
use crate::message::Message;
use crate::session::Session;

/// Lower-cases (Unicode) the service method of every received CALL and PUSH before the route lookup,
/// so `/Math/Add` reaches `/math/add`. Register routes in lower case (the HTTP name mapper
/// already does).
#[derive(Clone, Copy, Debug, Default)]
pub struct IgnoreCase;

impl Plugin for IgnoreCase {
    fn name(&self) -> &str {
        "ignoreCase"
    }
    fn observes_writes(&self) -> bool {
        false
    }
    fn post_read_call_header(&self, _: &Session, message: &mut Message) -> HookResult {
        lowercase(&mut message.service_method);
        Ok(())
    }
    fn post_read_push_header(&self, _: &Session, message: &mut Message) -> HookResult {
        lowercase(&mut message.service_method);
        Ok(())
    }
}

fn lowercase(service_method: &mut String) {
    if service_method.is_ascii() {
        service_method.make_ascii_lowercase();
    } else {
        *service_method = service_method.to_lowercase();
    }
}
