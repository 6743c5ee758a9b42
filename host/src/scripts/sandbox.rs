//! The Rhai sandbox: `Engine::new_raw` with the standard packages less the language-core
//! one (its `sleep` blocks the thread), `eval` disabled, no module loading, limits on
//! operations, call depth, expression depth, string/array/map sizes, host calls per run,
//! and a wall-clock deadline per run checked in `on_progress` and bounding every host call
//! (the time a rule's Kaltura reads take counts: nothing a rule does outlasts it). The
//! run's context is `run.rs`; the functions rules call are `api.rs`.

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicBlobPackage, BasicFnPackage, BasicIteratorPackage,
    BasicMapPackage, BasicMathPackage, BasicStringPackage, BasicTimePackage, BitFieldPackage,
    LogicPackage, MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, EvalAltResult};

use super::run;
pub use super::run::Limits;

rhai::def_package! {
    /// Rhai's `StandardPackage` without `LanguageCorePackage`, whose `sleep()` blocks the
    /// worker thread where no deadline can stop it (and whose `exit`, `tag` and reflection
    /// functions rules do not need).
    pub RulePackage(lib):
        ArithmeticPackage,
        BasicStringPackage,
        BasicIteratorPackage,
        BasicFnPackage,
        BitFieldPackage,
        LogicPackage,
        BasicMathPackage,
        BasicArrayPackage,
        BasicBlobPackage,
        BasicMapPackage,
        BasicTimePackage,
        MoreStringPackage
    {}
}

/// Marker the deadline check raises (recognised when the error is reported).
pub const DEADLINE: &str = "kd:deadline";

/// The engine every rule runs in.
pub fn engine(limits: &Limits) -> Engine {
    let mut e = Engine::new_raw();
    e.register_global_module(RulePackage::new().as_shared_module());
    e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    e.disable_symbol("eval");
    e.set_max_operations(limits.max_operations);
    e.set_max_call_levels(limits.max_call_levels);
    e.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth / 2);
    e.set_max_string_size(limits.max_string_size);
    e.set_max_array_size(limits.max_array_size);
    e.set_max_map_size(limits.max_map_size);
    e.set_max_modules(0);
    e.on_progress(|ops| {
        // Checking the clock every 256 operations is cheap and still precise enough.
        (ops % 256 == 0 && run::past_deadline()).then(|| Dynamic::from(DEADLINE))
    });
    e.on_print(run::printed);
    e.on_debug(|text, _, pos| run::debugged(text, pos.line()));
    super::api::register(&mut e);
    e
}

/// `file:line:col: message` for a compile or run error, and whether a limit stopped it.
pub fn describe(rule: &str, err: &EvalAltResult, limits: &Limits) -> (String, bool) {
    use EvalAltResult as E;
    // The error where it happened, not the calls that led there.
    let mut err = err;
    while let E::ErrorInFunctionCall(_, _, inner, _) = err {
        err = inner;
    }
    let pos = err.position();
    let at = if pos.is_none() {
        rule.to_string()
    } else {
        format!(
            "{rule}:{}:{}",
            pos.line().unwrap_or(0),
            pos.position().unwrap_or(0)
        )
    };
    let (msg, limit) = match err {
        E::ErrorTerminated(v, _) if v.clone().into_string().ok().as_deref() == Some(DEADLINE) => (
            format!(
                "stopped: ran longer than {} ms",
                limits.deadline.as_millis()
            ),
            true,
        ),
        E::ErrorTooManyOperations(_) => (
            format!(
                "stopped: more than {} operations (an endless loop?)",
                limits.max_operations
            ),
            true,
        ),
        E::ErrorStackOverflow(_) => (
            format!(
                "stopped: calls nested deeper than {}",
                limits.max_call_levels
            ),
            true,
        ),
        E::ErrorDataTooLarge(what, _) => (format!("stopped: {what} is larger than allowed"), true),
        E::ErrorTooManyModules(_) => ("modules cannot be loaded".to_string(), true),
        E::ErrorRuntime(v, _) => (v.to_string(), false),
        other => {
            // Rhai appends " (line L, position P)"; the prefix already says where.
            let text = other.to_string();
            let text = match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            };
            (text, false)
        }
    };
    (format!("{at}: {msg}"), limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::guild::GuildEntry;
    use crate::scripts::run::{Run, with_run};
    use std::sync::Arc;
    use std::time::Duration;

    /// Runs `src` where only the counted limits can stop it: the deadline is far away, so
    /// the verdict never depends on how fast the machine is.
    fn run(src: &str) -> Result<Dynamic, String> {
        let limits = Limits {
            deadline: Duration::from_secs(3600),
            ..Default::default()
        };
        let e = engine(&limits);
        let r = Run::new(
            "1",
            "t.rhai",
            "test",
            Arc::new(GuildEntry::default()),
            limits.clone(),
        );
        let (out, _) = with_run(r, || e.eval::<Dynamic>(src));
        out.map_err(|err| describe("t.rhai", &err, &limits).0)
    }

    #[test]
    fn limits_stop_hostile_scripts() {
        assert!(run("loop {}").unwrap_err().contains("operations"),);
        assert!(
            run("fn f(n) { f(n + 1) } f(0)")
                .unwrap_err()
                .contains("nested deeper")
        );
        let big = run("let s = \"x\"; loop { s += s; }").unwrap_err();
        assert!(big.contains("larger than allowed"), "{big}");
        let arr = run("let a = []; loop { a.push(1); }").unwrap_err();
        assert!(
            arr.contains("larger than allowed") || arr.contains("operations"),
            "{arr}"
        );
        assert!(run("eval(\"1\")").unwrap_err().contains("eval"));
        assert!(run("import \"x\" as y; 1").is_err());
        // Nothing that blocks the thread is there to call, directly or through a pointer.
        for blocking in ["sleep(3600)", "sleep(3600.0)", "call(Fn(\"sleep\"), 3600)"] {
            let err = run(blocking).unwrap_err();
            assert!(err.contains("sleep"), "{blocking}: {err}");
        }
        assert_eq!(run("let x = 40; x + 2").unwrap().as_int().unwrap(), 42);
    }

    #[test]
    fn the_deadline_stops_slow_scripts() {
        // Few operations, each slow: only the clock stops it.
        let limits = Limits {
            deadline: Duration::from_millis(50),
            max_operations: 0,
            ..Default::default()
        };
        let e = engine(&limits);
        let r = Run::new(
            "1",
            "slow.rhai",
            "test",
            Arc::new(GuildEntry::default()),
            limits.clone(),
        );
        let (out, _) = with_run(r, || {
            e.eval::<Dynamic>("let s = \"\"; loop { s = \"x\".pad(10000, 'y'); }")
        });
        let err = describe("slow.rhai", &out.unwrap_err(), &limits).0;
        assert!(
            err.starts_with("slow.rhai:1:") && err.contains("longer than 50 ms"),
            "{err}"
        );
    }
}
