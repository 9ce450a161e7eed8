//! Case outcomes, their one-line reports, the side-by-side table and the
//! summary lines.

use crate::cases::Case;

/// How a case ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Behaves as the spec requires.
    Pass,
    /// Does not; the detail says how.
    Fail(String),
    /// Could not be checked on this host; the reason says why.
    Skip(String),
}

impl Outcome {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "SKIP",
        }
    }
}

/// The outcomes of one runtime.
#[derive(Debug)]
pub struct RuntimeResults {
    /// Base name of the runtime binary.
    pub name: String,
    /// `(case name, outcome)` in run order.
    pub outcomes: Vec<(&'static str, Outcome)>,
}

impl RuntimeResults {
    /// `conformance <name>: N passed, M failed, K skipped`.
    pub fn summary(&self) -> String {
        let count = |w: &str| self.outcomes.iter().filter(|(_, o)| o.word() == w).count();
        format!(
            "conformance {}: {} passed, {} failed, {} skipped",
            self.name,
            count("PASS"),
            count("FAIL"),
            count("SKIP")
        )
    }

    /// Number of failed cases.
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Fail(_)))
            .count()
    }
}

/// The line printed for one case: `PASS|FAIL|SKIP <case>: reason`.
pub fn line(case: &Case, runtime: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Pass => format!("PASS {}: {}", case.name, case.spec),
        Outcome::Skip(reason) => format!("SKIP {}: {reason}", case.name),
        Outcome::Fail(detail) => {
            let mut l = format!("FAIL {}: {detail} ({})", case.name, case.spec);
            if let (true, Some(why)) = (runtime == "runc", case.runc_divergence) {
                l.push_str(&format!(" [runc divergence: {why}]"));
            }
            l
        }
    }
}

/// The side-by-side table `case | <runtime> | …`, one row per case, with
/// the known runc divergences as footnotes.
pub fn table(cases: &[Case], columns: &[&RuntimeResults]) -> String {
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:width$}", "case");
    for c in columns {
        out.push_str(&format!(" | {:7}", c.name));
    }
    out.push('\n');
    let mut notes = Vec::new();
    for case in cases {
        out.push_str(&format!("{:width$}", case.name));
        for col in columns {
            let cell = col
                .outcomes
                .iter()
                .find(|(n, _)| *n == case.name)
                .map(|(_, o)| o);
            let mut word = cell.map_or("-", Outcome::word).to_owned();
            if let (Some(Outcome::Fail(_)), true, Some(why)) =
                (cell, col.name == "runc", case.runc_divergence)
            {
                word.push('*');
                notes.push(format!("* {}: {why}", case.name));
            }
            out.push_str(&format!(" | {word:7}"));
        }
        out.push('\n');
    }
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::case;

    fn results(name: &str, outcomes: Vec<(&'static str, Outcome)>) -> RuntimeResults {
        RuntimeResults {
            name: name.to_owned(),
            outcomes,
        }
    }

    #[test]
    fn summary_has_the_exact_format() {
        let r = results(
            "corten",
            vec![
                ("a", Outcome::Pass),
                ("b", Outcome::Fail("x".into())),
                ("c", Outcome::Skip("y".into())),
            ],
        );
        assert_eq!(
            r.summary(),
            "conformance corten: 1 passed, 1 failed, 1 skipped"
        );
        assert_eq!(r.failed(), 1);
    }

    #[test]
    fn runc_failures_carry_the_divergence() {
        let c = case("x.y", "runtime.md#kill", |_| Ok(())).runc("because");
        let fail = Outcome::Fail("boom".into());
        assert_eq!(
            line(&c, "corten", &fail),
            "FAIL x.y: boom (runtime.md#kill)"
        );
        assert_eq!(
            line(&c, "runc", &fail),
            "FAIL x.y: boom (runtime.md#kill) [runc divergence: because]"
        );
        assert_eq!(
            line(&c, "runc", &Outcome::Pass),
            "PASS x.y: runtime.md#kill"
        );
    }

    #[test]
    fn table_lists_reference_first_and_footnotes() {
        let c = vec![case("x.y", "s", |_| Ok(())).runc("because")];
        let runc = results("runc", vec![("x.y", Outcome::Fail("f".into()))]);
        let corten = results("corten", vec![("x.y", Outcome::Pass)]);
        let t = table(&c, &[&runc, &corten]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("case | runc") && lines[0].contains("| corten"));
        assert!(lines[1].contains("FAIL*") && lines[1].trim_end().ends_with("PASS"));
        assert_eq!(lines[2], "* x.y: because");
    }
}
