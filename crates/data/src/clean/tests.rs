use super::*;

#[test]
fn triplet_cleaner_applies_every_rule_and_renumbers() {
    let raw = "      obj[7]{id,name,x1,y1,x2,y2}:\n\
               \x20       1,person,10,10,100,200\n\
               \x20       2,traffic light,0,0,640,480\n\
               \x20       2,dup,1,1,2,2\n\
               \x20       3,bad,5,5,5,9\n\
               \x20       4,outside,0,0,641,10\n\
               \x20       5, ,1,1,2,2\n\
               \n\
               \x20       6,cup,1,1,3,3\n\
               \x20     rel[6]{subj,pred,obj}:\n\
               \x20       1,holding,6\n\
               \x20       1,holding,6\n\
               \x20       2,on,2\n\
               \x20       1,near,3\n\
               \x20       6,in-front-of,2\n\
               \x20       x,on,1\n";
    let c = clean_triplet_text(raw, false);
    assert_eq!(
        c.text,
        "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,10,10,100,200\n2,traffic light,0,0,640,480\n\
         3,cup,1,1,3,3\nrel[2]{subj,pred,obj}:\n1,holding,3\n3,in-front-of,2\n</answer>\n"
    );
    assert_eq!(
        c.stats,
        TripletCleanStats {
            objects_kept: 3,
            objects_bad_row_or_box: 2,
            objects_duplicate_id: 1,
            objects_empty_name: 1,
            relations_kept: 2,
            relations_malformed: 1,
            relations_dangling: 1,
            relations_self: 1,
            relations_empty_pred: 0,
            relations_duplicate: 1,
        }
    );
    let canon = clean_triplet_text(raw, true);
    assert!(canon.text.contains("\n2,traffic-light,0,0,640,480\n"));
}

#[test]
fn triplet_cleaner_without_headers_returns_the_text() {
    let c = clean_triplet_text("  nothing here \n", false);
    assert_eq!((c.text.as_str(), c.stats.relations_kept), ("nothing here\n", 0));
    // The rel header before any obj header stops the search: no obj block.
    let c = clean_triplet_text("rel[0]{subj,pred,obj}:\nobj[1]{id,name,x1,y1,x2,y2}:\n1,a,0,0,1,1", false);
    assert_eq!(c.stats.objects_kept, 0);
    assert!(c.text.starts_with("rel[0]"));
}

#[test]
fn triplet_cleaner_reads_the_first_answer_block_and_is_idempotent() {
    let t = "junk <ANSWER>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,a,0,0,1,1\n2,b,1,1,2,2\nREL[1]{SUBJ,PRED,OBJ}:\n1,x,2\n</answer> tail";
    let c = clean_triplet_text(t, false);
    assert_eq!(
        c.text,
        "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,a,0,0,1,1\n2,b,1,1,2,2\nrel[1]{subj,pred,obj}:\n1,x,2\n</answer>\n"
    );
    assert_eq!(clean_triplet_text(&c.text, false).text, c.text);
}

#[test]
fn ag_cleaner_drops_bad_boxes_and_their_pairs() {
    let raw = "obj[4]{id,name,x1,y1,x2,y2}:\n  1,person,24,71,259,268\n  2,table,222,143,700,244\n  \
               3,cup/glass/bottle,56,179,249,269\n  4,broken row\n\
               rel_pairs[3]{subj,attention,spatial,contacting,obj}:\n  1,[unsure],[in_front_of],[not_contacting],2\n  \
               1,[not_looking_at],[beneath, behind],[sitting_on,leaning_on],3\n  1,[a],[b],4\n";
    let c = clean_ag_text(raw).unwrap();
    assert_eq!(
        c.text,
        "<answer>\n      obj[2]{id,name,x1,y1,x2,y2}:\n        1,person,24,71,259,268\n        \
         2,cup/glass/bottle,56,179,249,269\n      rel_pairs[1]{subj,attention,spatial,contacting,obj}:\n        \
         1,[not_looking_at],[beneath,behind],[sitting_on,leaning_on],2\n</answer>\n"
    );
    assert_eq!(
        c.stats,
        AgCleanStats {
            objects_total: 3,
            objects_removed_bad_bbox: 1,
            objects_removed_malformed: 1,
            rels_total: 2,
            rels_removed_missing_obj: 1,
            rels_removed_malformed: 1,
            rels_kept: 1,
        }
    );
    assert_eq!(clean_ag_text(&c.text).unwrap().text, c.text);
}

#[test]
fn ag_cleaner_needs_both_headers_in_order() {
    assert_eq!(clean_ag_text("obj[0]{id,name,x1,y1,x2,y2}:"), Err(AgParseError));
    let swapped = "rel_pairs[0]{subj,attention,spatial,contacting,obj}:\nobj[0]{id,name,x1,y1,x2,y2}:";
    assert_eq!(clean_ag_text(swapped), Err(AgParseError));
    // Headers are case-sensitive here.
    assert_eq!(
        clean_ag_text("OBJ[0]{id,name,x1,y1,x2,y2}:\nrel_pairs[0]{subj,attention,spatial,contacting,obj}:"),
        Err(AgParseError)
    );
}
