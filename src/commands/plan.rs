//! `poolwright plan`: what apply would do, offline, passwords masked.

use super::load;
use crate::cli::{Cli, Format, TargetsArgs};
use crate::context::Context;
use crate::error::Error;
use crate::plan::{TargetPlan, plan};

pub fn run(cli: &Cli, ctx: &Context, args: &TargetsArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let plans: Vec<TargetPlan> = config
        .select(&args.targets)?
        .into_iter()
        .map(plan)
        .collect();
    match cli.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plans).expect("plans serialise")
        ),
        Format::Text => print!("{}", text(&plans)),
        Format::Markdown => print!("{}", markdown(&plans)),
    }
    Ok(())
}

fn text(plans: &[TargetPlan]) -> String {
    let mut out = String::new();
    for (i, p) in plans.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("target {} ({})\n", p.target, p.description));
        for f in &p.files {
            let secret = if f.holds_secrets {
                ", holds secrets"
            } else {
                ""
            };
            out.push_str(&format!("  write   {} (mode {}{secret})\n", f.path, f.mode));
        }
        for a in &p.actions {
            out.push_str(&format!("  then    {a}\n"));
        }
        for b in &p.budget {
            out.push_str(&format!("  budget  {b}\n"));
        }
        out.push_str(&format!("  url     {}\n", p.url));
        if let Some(d) = &p.direct_url {
            out.push_str(&format!("  direct  {d}\n"));
        }
    }
    out
}

fn markdown(plans: &[TargetPlan]) -> String {
    let mut out = String::from("| target | provider | files | url |\n| --- | --- | --- | --- |\n");
    for p in plans {
        let files: Vec<String> = p.files.iter().map(|f| format!("`{}`", f.path)).collect();
        out.push_str(&format!(
            "| {} | {} | {} | `{}` |\n",
            p.target,
            p.description,
            files.join("<br>"),
            p.url
        ));
    }
    out
}
