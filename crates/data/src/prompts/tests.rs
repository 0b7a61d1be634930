use super::*;

#[test]
fn render_substitutes_once_and_keeps_unknown_placeholders() {
    assert_eq!(render("a <<X>> b <<Y>> <<X>>", &[("X", "1")]), "a 1 b <<Y>> 1");
    // A value is never scanned again.
    assert_eq!(render("[<<X>>]", &[("X", "<<X>>")]), "[<<X>>]");
    assert_eq!(render("<<X", &[("X", "1")]), "<<X");
    assert_eq!(render("<<<<X>>", &[("X", "1")]), "<<1");
}

#[test]
fn json_list_matches_python_dumps() {
    assert_eq!(json_list(&["a", "traffic light", "é\"q"]), r#"["a", "traffic light", "é\"q"]"#);
    assert_eq!(json_list::<&str>(&[]), "[]");
}

#[test]
fn canonical_labels_dedup_in_order() {
    assert_eq!(
        canonical_labels(&["Traffic Light", "traffic_light", "", "in front of"]),
        ["traffic-light", "in-front-of"]
    );
}

#[test]
fn strip_edge_cases() {
    assert_eq!(strip_prev_graph("no block here"), Ok(None));
    let t =
        "head\n\nYou are also given the previous frame scene graph in TOON format.\nx\n\nNow, generate the complete \
             scene graph for the provided image. Tail";
    assert_eq!(
        strip_prev_graph(t).unwrap().as_deref(),
        Some("head\n\nNow, generate the complete scene graph for the provided image. Tail")
    );
    let bad = "a\nYou are also given the previous frame scene graph in TOON format. and nothing else";
    assert_eq!(strip_prev_graph(bad), Err(StripError { start: 1 }));
}
