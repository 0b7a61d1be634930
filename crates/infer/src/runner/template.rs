//! The GEN-prompt template (§6.1 of the reference facts): the text before and after the previous graph, taken from
//! the first prompt that carries a previous-graph header, so every later frame's prompt is rebuilt from one
//! template. The header and "Now" marker lists are the reference's, in its search order.

/// PVSG's header.
pub const PREV_HEADER_PVSG: &str = "Previous frame scene graph (TOON):\n";
/// Action Genome's header; a template found through it wraps the previous graph in `<answer>` tags.
pub const PREV_HEADER_AG: &str = "Previous frame ground-truth scene graph (TOON), for reference:\n";

const NOW: &str = "Now, generate the complete scene graph for the provided image";
const WRITE_ONLY: &str = ". Write your response only between <answer> and </answer> tags.";
const WRAP: &str = ". Wrap your scene graph in <answer>...</answer> tags.";

/// The 12 places a suffix may start, in the reference's order.
fn now_markers() -> [String; 12] {
    [
        format!("\n\n\n{NOW}{WRITE_ONLY}"),
        format!("\n\n{NOW}{WRITE_ONLY}"),
        format!("\n\n\n{NOW}{WRITE_ONLY}\n"),
        format!("\n\n{NOW}{WRITE_ONLY}\n"),
        format!("\n\n\n{NOW}{WRAP}"),
        format!("\n\n{NOW}{WRAP}"),
        format!("\n\n\n{NOW}{WRAP}\n"),
        format!("\n\n{NOW}{WRAP}\n"),
        format!("\n\n\n{NOW}:\n"),
        format!("\n\n\n{NOW}:"),
        format!("\n\n{NOW}:\n"),
        format!("\n\n{NOW}:"),
    ]
}

/// Prefix (up to and including the header) and suffix (from the "Now" marker) of a later-frame prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrevTemplate {
    pub prefix: String,
    pub suffix: String,
    /// Wrap the previous graph as `<answer>\n…\n</answer>` (the AG header).
    pub wrap: bool,
}

impl PrevTemplate {
    /// The template of the first prompt (in order) that has one.
    pub fn find<'a>(prompts: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        prompts.into_iter().find_map(Self::from_prompt)
    }

    /// The template of one prompt, if it has a header followed by a "Now" marker.
    pub fn from_prompt(user: &str) -> Option<Self> {
        let markers = now_markers();
        [PREV_HEADER_PVSG, PREV_HEADER_AG].into_iter().find_map(|header| {
            let at = user.find(header)?;
            let rest = &user[at + header.len()..];
            let idx = markers.iter().find_map(|m| rest.find(m.as_str()))?;
            Some(PrevTemplate {
                prefix: user[..at + header.len()].to_string(),
                suffix: rest[idx..].to_string(),
                wrap: header == PREV_HEADER_AG,
            })
        })
    }

    /// The prompt with `prev` (stripped; wrapped for AG unless it already starts with `<answer`) in place.
    pub fn build(&self, prev: &str) -> String {
        let prev = sgvlm_graph::pytext::strip(prev);
        let starts_with_answer = prev.to_lowercase().starts_with("<answer");
        if self.wrap && !prev.is_empty() && !starts_with_answer {
            format!("{}<answer>\n{prev}\n</answer>{}", self.prefix, self.suffix)
        } else {
            format!("{}{prev}{}", self.prefix, self.suffix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvsg_template_round_trips_the_data_crates_prompt() {
        let prompt = sgvlm_data::prompts::pvsg_with_prev("obj[1]{id,name,x1,y1,x2,y2}:\n  1,cat,0,0,5,5");
        let t = PrevTemplate::from_prompt(&prompt).expect("a PVSG later-frame prompt has a template");
        assert!(!t.wrap);
        assert!(t.prefix.ends_with(PREV_HEADER_PVSG));
        assert!(t.suffix.starts_with("\n\n"));
        assert_eq!(t.build("  obj[1]{id,name,x1,y1,x2,y2}:\n  1,cat,0,0,5,5\n"), prompt);
    }

    #[test]
    fn ag_template_wraps_the_previous_graph() {
        let prompt = sgvlm_data::prompts::ag_follow("      obj[0]{id,name,x1,y1,x2,y2}:");
        let t = PrevTemplate::from_prompt(&prompt).expect("an AG later-frame prompt has a template");
        assert!(t.wrap);
        let built = t.build("obj[0]{id,name,x1,y1,x2,y2}:");
        assert!(built.contains(&format!("{PREV_HEADER_AG}<answer>\nobj[0]{{id,name,x1,y1,x2,y2}}:\n</answer>")));
        assert_eq!(t.build("<ANSWER>x</answer>"), format!("{}<ANSWER>x</answer>{}", t.prefix, t.suffix));
        assert_eq!(t.build(""), format!("{}{}", t.prefix, t.suffix));
    }

    #[test]
    fn first_frame_prompts_have_no_template() {
        assert_eq!(PrevTemplate::find([sgvlm_data::prompts::pvsg_first().as_str()]), None);
        assert_eq!(PrevTemplate::find([sgvlm_data::prompts::psg(sgvlm_data::prompts::PsgLabels::Sft).as_str()]), None);
    }
}
