#!/bin/sh
# Seeds Gitea for the test bed: an admin user and the policy repositories
# the gate scenarios use, each with one Rego file. Runs once, in its own
# container, after Gitea is healthy; exits non-zero on any failure.
set -eu
: "${GITEA:=http://gitea:3000}" "${GITEA_OWNER:=gitea_admin}" "${GITEA_PASSWORD:=gitea_admin_pw}"
# Alpine's image has neither git nor curl; an image that has both needs nothing.
if ! command -v git >/dev/null || ! command -v curl >/dev/null; then
  apk add --no-cache git curl >/dev/null
fi

api() { curl -fsS -u "$GITEA_OWNER:$GITEA_PASSWORD" -H 'Content-Type: application/json' "$@"; }

for repo in policy-repo-0001 policy-repo-0002 policy-repo-0003 policy-repo-offline; do
  if api "$GITEA/api/v1/repos/$GITEA_OWNER/$repo" >/dev/null 2>&1; then
    echo "$repo exists"
    continue
  fi
  api -X POST "$GITEA/api/v1/user/repos" -d "{\"name\":\"$repo\",\"default_branch\":\"main\"}" >/dev/null
  work=$(mktemp -d)
  git -C "$work" init -q -b main
  printf 'package %s\n\ndefault allow := false\n' "$(echo "$repo" | tr - _)" > "$work/policy.rego"
  printf '["policy.rego"]\n' > "$work/.manifest"
  git -C "$work" -c user.name=seed -c user.email=seed@example.invalid add -A
  git -C "$work" -c user.name=seed -c user.email=seed@example.invalid commit -q -m seed
  git -C "$work" push -q "http://$GITEA_OWNER:$GITEA_PASSWORD@${GITEA#http://}/$GITEA_OWNER/$repo.git" main
  echo "$repo seeded"
done
