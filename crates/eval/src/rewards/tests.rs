use super::*;

const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
                  3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// reference_facts.md §10, PSG/PVSG reward table.
#[test]
fn worked_vectors() {
    let cfg = RewardConfig::default();
    let s = score(GT, GT, Schema::Triplet, &cfg);
    assert_eq!(&s[..8], &[0.5, 1.5, 1.5, 3.0, 1.0, 2.0, 0.0, 0.0]);
    let prefixed = format!("<think>\n\n</think>\n\n{}<|im_end|>", GT.trim_end());
    assert_eq!(score(&prefixed, GT, Schema::Triplet, &cfg)[..8], s[..8]);

    let partial = "<answer>\nobj[4]{id,name,x1,y1,x2,y2}:\n1,adult,110,90,310,400\n2,sofa,250,300,400,480\n\
                   3,table,350,200,600,450\n4,cup,400,210,430,240\nrel[3]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n4,on,3\n</answer>";
    let p = score(partial, GT, Schema::Triplet, &cfg);
    let want = [0.5, 0.75, 1.098219, 1.5, 0.333333, 0.8, -0.5, -0.444444];
    for (k, (got, exp)) in p.iter().zip(want).enumerate() {
        assert!(close(*got, exp), "{}: {got} vs {exp}", REWARD_NAMES[k]);
    }

    let only_adult =
        "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\nrel[0]{subj,pred,obj}:\n</answer>";
    assert_eq!(&score(only_adult, GT, Schema::Triplet, &cfg)[..8], &[0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]);

    let invalid = GT.replace("\nrel[2]", "\n\nrel[2]");
    let s = score(&invalid, GT, Schema::Triplet, &cfg);
    assert_eq!(&s[..8], &[0.0; 8]);
    assert_eq!(&s[8..], &[0.0, 3.0, 2.0, 0.0, 1.0], "diagnostics are not gated");
}

#[test]
fn batch_interface() {
    let cfg = RewardConfig::default();
    let rows = score_batch(&[GT, "junk"], &[GT, GT], Schema::Triplet, &cfg);
    let cols = by_function(&rows);
    assert_eq!(cols[0], vec![0.5, 0.0]);
    assert_eq!(cols[8], vec![0.0, 1.0]);
    assert_eq!(total(&rows[0]), 9.5);
}

fn sound() -> RewardConfig {
    RewardConfig { protocol: crate::Protocol::Sound, ..RewardConfig::default() }
}

/// §9 item 14: under `paper` an invalid completion (0) beats a valid one that hallucinates everything; under
/// `sound` it scores strictly below it.
#[test]
fn sound_invalid_scores_below_every_valid_completion() {
    let all_wrong = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,dog,0,0,10,10\n2,car,20,20,30,30\n\
                     rel[1]{subj,pred,obj}:\n1,on,2\n</answer>";
    let invalid = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n</answer>";
    let paper = RewardConfig::default();
    let (bad, inv) = (score(all_wrong, GT, Schema::Triplet, &paper), score(invalid, GT, Schema::Triplet, &paper));
    assert!(total(&bad) < -1.3, "{bad:?}");
    assert_eq!(total(&inv), 0.0);
    assert!(total(&inv) > total(&bad), "the paper's flaw");

    let cfg = sound();
    let bad_s = score(all_wrong, GT, Schema::Triplet, &cfg);
    let inv_s = score(invalid, GT, Schema::Triplet, &cfg);
    assert_eq!(bad_s, bad, "valid completions score as in paper here");
    assert_eq!(&inv_s[..WEIGHTED], &[-0.5, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0]);
    assert_eq!(total(&inv_s), -2.5);
    assert_eq!(&inv_s[WEIGHTED..], &inv[WEIGHTED..], "diagnostics unchanged");
    // Other weights move the floor with them.
    let heavy = RewardConfig { obj_halluc_penalty_weight: 3.0, format_reward_weight: 0.1, ..sound() };
    assert!(
        total(&score(invalid, GT, Schema::Triplet, &heavy)) < total(&score(all_wrong, GT, Schema::Triplet, &heavy))
    );
}

/// §9 item 15: a GT relation whose endpoint name is not canonical (`traffic light`) can never be matched; `sound`
/// leaves it out of `n_gt`.
#[test]
fn sound_drops_unmatchable_gt_relations_from_n_gt() {
    let gt = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
              3,traffic light,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>";
    let pred = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
                rel[1]{subj,pred,obj}:\n1,sitting-on,2\n</answer>";
    let paper = score(pred, gt, Schema::Triplet, &RewardConfig::default());
    let s = score(pred, gt, Schema::Triplet, &sound());
    // paper: recall 1/2 → 1.5, F1 2·(1·0.5)/1.5 → 2·0.6667; sound: recall 1/1.
    assert!(close(paper[3], 1.5) && close(paper[5], 2.0 * 2.0 / 3.0), "{paper:?}");
    assert_eq!((s[3], s[4], s[5], s[7]), (3.0, 1.0, 2.0, 0.0));
    assert_eq!(&s[..3], &paper[..3], "object rewards unchanged");
    let p = Prepared::new(lenient::parse_completion(gt, Schema::Triplet, &cfg_gate()), Schema::Triplet);
    assert_eq!((p.graph.relations.len(), matchable_gt_relations(&p)), (2, 1));
}

fn cfg_gate() -> sgvlm_graph::StrictConfig {
    RewardConfig::default().gate
}

/// `sound` scores the answer the gate validated; `paper` reads the first `<answer>` block, here inside the think
/// block.
#[test]
fn sound_parses_the_gated_answer() {
    let decoy = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,dog,0,0,10,10\nrel[0]{subj,pred,obj}:\n</answer>";
    let completion = format!("<think>\ndraft: {decoy}\n</think>\n\n{}", GT.trim_end());
    let cfg = sound();
    assert!(sgvlm_graph::strict::is_valid(&completion, Schema::Triplet, &cfg.gate));
    let paper = score(&completion, GT, Schema::Triplet, &RewardConfig::default());
    assert_eq!((paper[9], paper[10]), (1.0, 0.0), "paper counts the draft's objects");
    assert_eq!((paper[1], paper[3]), (0.0, 0.0), "the draft's dog matches nothing");
    let s = score(&completion, GT, Schema::Triplet, &cfg);
    assert_eq!(&s[..8], &[0.5, 1.5, 1.5, 3.0, 1.0, 2.0, 0.0, 0.0]);
    assert_eq!((s[9], s[10]), (3.0, 2.0));
    assert!(total(&paper) < total(&s));
}

#[test]
fn paper_is_the_default_and_protocol_is_a_setting() {
    assert_eq!(RewardConfig::default().protocol, crate::Protocol::Paper);
    let mut c = RewardConfig::default();
    c.set("reward_protocol", "sound").unwrap();
    assert_eq!(c, sound());
}

/// The per-row verdicts are the rows the counts count: object 2 (`sofa`) and relation `4,on,3` are wrong.
#[test]
fn row_verdicts_mark_the_rows_the_rewards_count() {
    let cfg = RewardConfig::default();
    let gt = Prepared::new(lenient::parse_solution(GT, Schema::Triplet, &cfg.gate), Schema::Triplet);
    let partial = "<answer>\nobj[4]{id,name,x1,y1,x2,y2}:\n1,adult,110,90,310,400\n2,sofa,250,300,400,480\n\
                   3,table,350,200,600,450\n4,cup,400,210,430,240\nrel[3]{subj,pred,obj}:\n1,beside,3\n4,on,3\n\
                   1,sitting-on,2\n</answer>";
    let v = row_verdicts_of(partial, &gt, Schema::Triplet, &cfg).unwrap();
    assert_eq!(v.objects, [true, false, true, false]);
    // `1,sitting-on,2` names the sofa where the solution has a chair: no match.
    assert_eq!(v.relations, [true, false, false]);
    let v = row_verdicts_of(GT, &gt, Schema::Triplet, &cfg).unwrap();
    assert_eq!((v.objects, v.relations), (vec![true; 3], vec![true; 2]));
    assert_eq!(row_verdicts_of(&GT.replace("\nrel[2]", "\n\nrel[2]"), &gt, Schema::Triplet, &cfg), None);
}
