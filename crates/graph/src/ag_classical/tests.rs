use super::*;

const GT: &str = "<answer>\n      obj[3]{id,name,x1,y1,x2,y2}:\n        1,person,10,10,200,400\n        \
                  2,cup/glass/bottle,150,200,300,300\n        3,Sofa-Couch,0,0,640,480\n      \
                  rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n        \
                  1,[looking_at],[in_front_of,behind],[holding],2\n        1,[],[beneath],[sitting_on,bogus],3\n\
                  </answer>\n";

fn ids(f: &AgFrame) -> Vec<(u64, &str, usize)> {
    f.objects.iter().map(|o| (o.id, o.name.as_str(), o.class_idx)).collect()
}

#[test]
fn parses_objects_pairs_and_triplets() {
    let f = parse(GT).unwrap();
    assert_eq!(ids(&f), vec![(1, "person", 1), (2, "cup/glass/bottle", 11), (3, "Sofa-Couch", 0)]);
    assert_eq!(f.objects[2].bbox, [0, 0, 640, 480]);
    assert_eq!(f.pairs.len(), 2);
    assert_eq!(f.pairs[0].spatial, vec!["in_front_of", "behind"]);
    assert_eq!(f.pairs[1].attention, Vec::<String>::new());
    let t: Vec<_> = f.gt_triplets().iter().map(|t| (t.subj, t.obj, t.pred)).collect();
    // attention (s,o,a); spatial reversed (o,s,3+s); contacting (s,o,9+c); unknown labels ignored.
    assert_eq!(t, vec![(0, 1, 0), (1, 0, 5), (1, 0, 6), (0, 1, 14), (2, 0, 4), (0, 2, 19)]);
    let counts = f.gt_class_counts();
    assert_eq!(counts.iter().sum::<usize>(), 6);
    assert_eq!((counts[5], counts[19], counts[25]), (1, 1, 0));
    assert_eq!(sample_status(GT, GT), AgStatus::Scored);
}

#[test]
fn class_lookup_rules() {
    assert_eq!(object_class_index("person"), 1);
    assert_eq!(object_class_index(" Closet/Cabinet "), 9);
    // Substring fallback in class order, background included.
    assert_eq!(object_class_index("cup"), 11);
    assert_eq!(object_class_index("a"), 0, "'a' is inside 'background'");
    assert_eq!(object_class_index("couch"), 31);
    assert_eq!(object_class_index("tv"), 0);
    assert_eq!(object_class_index("bookshelf"), 5, "contains 'book' before 'shelf'");
    assert_eq!(object_class_index("paper_notebook"), 5, "'paper notebook' is not a class but contains 'book'");
    assert_eq!(object_class_index("glass"), 11);
    assert_eq!(object_class_index(""), 0);
    assert_eq!(object_class_index("\u{212a}"), 0);
}

#[test]
fn answer_and_think_rules() {
    let body = "1,person,1,1,5,5\n";
    assert!(parse(&format!("<answer>{body}</answer>")).is_some());
    assert_eq!(parse(body), None, "answer block required");
    assert_eq!(parse(&format!("<ANSWER>{body}</ANSWER>")), None, "case-sensitive tags");
    assert_eq!(parse(&format!("<answer>{body}")), None);
    // Think blocks are removed first, so an answer inside one is gone.
    assert_eq!(parse(&format!("<think><answer>{body}</answer></think>")), None);
    assert!(parse(&format!("<think>x</think><answer>{body}</answer>")).is_some());
    // An unclosed think block is left alone.
    assert!(parse(&format!("<think>x<answer>{body}</answer>")).is_some());
    // The first answer block is used.
    assert_eq!(parse(&format!("<answer>junk</answer><answer>{body}</answer>")), None);
}

#[test]
fn object_rows_and_box_filter() {
    let text = "<answer>\n1,person,0,0,640,480\n2,a,0,0,641,10\n3,b,-1,0,5,5\n4,c,5,0,5,5\n5,d,1.5,0,5,5\n\
                6 , e f ,  1 , 2 , 3 , 4  \n2,late,1,1,2,2\n7,x,y,1,2,3,4\n8,,1,2,3,4\n9, ,1,2,3,4\n\
                10,\nname,1,2,3,4\n</answer>";
    let f = parse(text).unwrap();
    assert_eq!(ids(&f), vec![(1, "person", 1), (2, "late", 0), (6, "e f", 0), (9, "", 0), (10, "name", 0)]);
    // Only invalid boxes: no object at all.
    assert_eq!(parse("<answer>1,person,5,5,5,5</answer>"), None);
    // Huge ids saturate, huge coordinates are out of range.
    let f = parse("<answer>99999999999999999999999,a,1,1,2,2\n2,b,1,1,99999999999999999999999,2</answer>").unwrap();
    assert_eq!(ids(&f), vec![(u64::MAX, "a", 0)]);
}

#[test]
fn pair_rows() {
    let text = "<answer>1,person,1,1,5,5\n2,cup,1,1,5,5\n\
                1, [ looking_at , ,unsure] , [in] , [holding,holding] , 2\n\
                1,[a],[b],[c]\n1,[a],[b],[c],2,3\n 2 ,[],[],[],1  \n1,[x\n],[],[],9\n</answer>";
    let f = parse(text).unwrap();
    let p: Vec<_> =
        f.pairs.iter().map(|p| (p.subj, p.obj, p.attention.len(), p.spatial.len(), p.contacting.len())).collect();
    assert_eq!(p, vec![(1, 2, 2, 1, 2), (2, 1, 0, 0, 0), (1, 9, 1, 0, 0)]);
    assert_eq!(f.pairs[0].attention, vec!["looking_at", "unsure"]);
    // Pair 1->9 has an unknown endpoint: no triplet; duplicates are kept.
    let preds: Vec<_> = f.gt_triplets().iter().map(|t| t.pred).collect();
    assert_eq!(preds, vec![0, 2, 8, 14, 14]);
}

#[test]
fn status_order() {
    let no_rels = "<answer>1,person,1,1,5,5\n1,[Looking_at],[],[],1</answer>";
    assert_eq!(sample_status("", GT), AgStatus::SkipGtParse);
    assert_eq!(sample_status(GT, "<answer></answer>"), AgStatus::SkipPredParse);
    assert_eq!(sample_status(no_rels, ""), AgStatus::SkipPredParse);
    assert_eq!(sample_status(no_rels, GT), AgStatus::SkipNoGtRels);
    assert_eq!(AgStatus::SkipNoGtRels.as_str(), "skip_no_gt_rels");
}

#[test]
fn odd_input_never_panics() {
    for s in [
        "<answer>\u{a0}1\u{a0},\u{e9}\u{a0},1,1,2,2\u{a0}\u{2028}</answer>",
        "<answer>1,\u{e9}</answer>",
        "<answer>\n\n\n</answer>",
        "<answer>1,[\u{e9}],[",
        "<answer>1,a,1,1,2,2\u{85}\n</answer>",
        "<think></think><answer>",
    ] {
        let _ = parse(s);
    }
}
