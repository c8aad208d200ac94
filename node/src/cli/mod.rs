//! `ensemble cli`: zkCli.sh commands, interactive or one-shot.
