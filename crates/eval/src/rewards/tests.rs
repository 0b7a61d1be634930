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
