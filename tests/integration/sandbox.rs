use crate::both;
use crate::common::*;

both!(demo_runs, |who| {
    let r = exec_profile(who, &sh_profile("", "id -u"), &[]).expect_code(0);
    let want = if who == Who::Root { "0" } else { "65534" };
    assert_eq!(r.stdout.trim(), want);
});
