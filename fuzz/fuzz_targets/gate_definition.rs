//! Gate-definition parsing (`gate::GateDefinition::parse`): errors are fine, panics are not.
#![no_main]

use evl::gate::GateDefinition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = GateDefinition::parse(data) {
        let _ = g.codes();
    }
});
