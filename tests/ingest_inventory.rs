//! Inventory importer against the seed-000 shaped inventory.

use evl::ingest::inventory::{self, Compatibility};

fn fixture() -> inventory::Inventory {
    inventory::parse_csv(
        "mesh-enforcement-targets-2026-04-18.csv",
        include_bytes!("fixtures/ingest/inventory.csv"),
    )
    .unwrap()
}

#[test]
fn seed_inventory_parses_sorted_with_the_blocking_workloads() {
    let inv = fixture();
    assert_eq!(inv.workloads.len(), 11);
    assert_eq!(
        inv.namespaces(),
        vec![
            "data-platform",
            "edge-routing",
            "identity",
            "orders",
            "payments"
        ]
    );
    let unresolved: Vec<&str> = inv
        .workloads
        .iter()
        .filter(|w| w.stateful && w.compatibility == Compatibility::Unresolved)
        .map(|w| w.workload.as_str())
        .collect();
    assert_eq!(
        unresolved,
        vec!["orders-journal-writer", "payments-ledger-sync"]
    );
    let adapter = inv.get("payments", "payments-settlement-adapter").unwrap();
    assert_eq!(adapter.sidecar_mode, "legacy-bypass");
    assert_eq!(
        adapter.exception_ids,
        vec!["mesh-cert-exc-117", "mesh-cert-exc-122"]
    );
    assert_eq!(adapter.extra["catalog_tier"], "tier-1");
    assert_eq!(adapter.line, 4);
    assert_eq!(inv.extra_columns, vec!["catalog_tier"]);
    assert!(
        inv.get("identity", "identity-token-service")
            .unwrap()
            .ambient_ready
    );
    assert_eq!(
        inv.get("data-platform", "data-platform-warehouse-loader")
            .unwrap()
            .compatibility,
        Compatibility::Incompatible
    );
}

#[test]
fn headers_in_any_order_and_case_with_bom_crlf_and_quotes() {
    let csv = "\u{feff}WORKLOAD,Exception_IDs,namespace,Owner,compatibility,STATEFUL,ambient_ready,sidecar_mode\r\nedge-gateway,\"exc-1 exc-2;exc-1\",edge-routing,\"Edge, Team\",VALIDATED,No,YES, injected \r\n";
    let inv = inventory::parse_csv("x.csv", csv.as_bytes()).unwrap();
    let w = &inv.workloads[0];
    assert_eq!(
        (w.namespace.as_str(), w.workload.as_str(), w.owner.as_str()),
        ("edge-routing", "edge-gateway", "Edge, Team")
    );
    assert_eq!(w.exception_ids, vec!["exc-1", "exc-2"]);
    assert_eq!(w.sidecar_mode, "injected");
    assert!(!w.stateful && w.ambient_ready);
}

#[test]
fn errors_name_file_line_and_column() {
    let head = "namespace,workload,owner,stateful,sidecar_mode,compatibility,ambient_ready,exception_ids\n";
    let cases: &[(&str, &[&str])] = &[
        (
            "namespace,workload,owner\n",
            &["inv.csv, line 1, field stateful", "missing"],
        ),
        ("a,b,c,d,e,f,g,h,a\n", &["line 1", "field a", "twice"]),
        (
            "payments,x,o,no,injected,maybe-later,no,\n",
            &["line 2, field compatibility", "maybe-later"],
        ),
        (
            "payments,x,o,no,injected,validated,no\n",
            &["line 2", "7 fields", "8 columns"],
        ),
        (
            "Payments,x,o,no,injected,validated,no,\n",
            &["line 2, field namespace", "Kubernetes name"],
        ),
        (
            "payments,x,,no,injected,validated,no,\n",
            &["line 2", "owner"],
        ),
        (
            "payments,x,o,no,,validated,no,\n",
            &["line 2, field sidecar_mode"],
        ),
        ("payments,\"x,o,no\n", &["inv.csv", "fields"]),
    ];
    for (body, needles) in cases {
        let text = if body.starts_with("namespace,workload,owner\n") || body.starts_with("a,b") {
            body.to_string()
        } else {
            format!("{head}{body}")
        };
        let e = inventory::parse_csv("inv.csv", text.as_bytes())
            .unwrap_err()
            .to_string();
        for n in *needles {
            assert!(e.contains(n), "{e:?} should contain {n:?}");
        }
    }
}

#[test]
fn empty_and_oversized_fields_are_refused() {
    let e = inventory::parse_csv("e.csv", b"  \n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    let long = "x".repeat(inventory::MAX_FIELD_BYTES + 1);
    let csv = format!(
        "namespace,workload,owner,stateful,sidecar_mode,compatibility,ambient_ready,exception_ids,notes\na,b,o,no,injected,validated,no,,{long}\n"
    );
    let e = inventory::parse_csv("l.csv", csv.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2") && e.contains("notes (column 9)") && e.contains("4096"),
        "{e}"
    );
}

#[test]
fn a_million_columns_is_refused_quickly() {
    let header = "c,".repeat(1_000_000);
    let start = std::time::Instant::now();
    let e = inventory::parse_csv("wide.csv", header.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("columns") && e.contains("256"), "{e}");
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
}
