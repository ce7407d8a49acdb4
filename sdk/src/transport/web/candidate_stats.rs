//! Which kind of path a connection uses, from the browser's `getStats()`.
//!
//! The report is a map of stats objects. Chromium names the selected pair in the
//! `transport` entry (`selectedCandidatePairId`); Firefox marks the pair itself
//! (`selected: true`). The pair names its two candidates, whose `candidateType` is
//! `host`, `srflx`, `prflx` or `relay`.

use js_sys::{Map, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

use crate::transport::CandidateType;

/// The candidate types of the selected pair: ours and the remote's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CandidatePair {
    pub(super) local: Option<CandidateType>,
    pub(super) remote: Option<CandidateType>,
}

fn field(object: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(object, &JsValue::from_str(name))
        .ok()
        .filter(|value| !value.is_undefined() && !value.is_null())
}

fn text(object: &JsValue, name: &str) -> Option<String> {
    field(object, name)?.as_string()
}

fn candidate_type(name: &str) -> Option<CandidateType> {
    match name {
        "host" => Some(CandidateType::Host),
        "srflx" => Some(CandidateType::ServerReflexive),
        "prflx" => Some(CandidateType::PeerReflexive),
        "relay" => Some(CandidateType::Relay),
        _ => None,
    }
}

/// The selected pair's candidate types; `None` while there is no selected pair
/// (or when the browser's report does not say).
pub(super) async fn selected_pair(pc: &RtcPeerConnection) -> Option<CandidatePair> {
    let report = JsFuture::from(pc.get_stats()).await.ok()?;
    // A maplike `RTCStatsReport`, not a `Map`: only its `forEach` is used.
    let report: Map = report.unchecked_into();
    let mut entries = Vec::new();
    report.for_each(&mut |value, _key| entries.push(value));
    let is = |entry: &JsValue, kind: &str| text(entry, "type").as_deref() == Some(kind);
    let by_id = |id: &str| {
        entries
            .iter()
            .find(|entry| text(entry, "id").as_deref() == Some(id))
    };
    let pair = entries
        .iter()
        .filter(|entry| is(entry, "transport"))
        .find_map(|transport| text(transport, "selectedCandidatePairId"))
        .and_then(|id| by_id(&id))
        .or_else(|| {
            entries.iter().find(|entry| {
                is(entry, "candidate-pair")
                    && field(entry, "selected").and_then(|v| v.as_bool()) == Some(true)
            })
        })?;
    let kind_of = |id_field: &str| {
        let id = text(pair, id_field)?;
        candidate_type(&text(by_id(&id)?, "candidateType")?)
    };
    Some(CandidatePair {
        local: kind_of("localCandidateId"),
        remote: kind_of("remoteCandidateId"),
    })
}
