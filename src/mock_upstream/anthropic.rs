//! The mock's anthropic dialect (STUB: routes being written).

use std::sync::Arc;

use axum::Router;

use super::Mock;

/// Add this dialect's routes.
pub(super) fn routes(r: Router<Arc<Mock>>) -> Router<Arc<Mock>> {
    r
}
