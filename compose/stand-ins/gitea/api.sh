#!/bin/sh
# The part of Gitea's API the test bed calls (compose/gitea-seed.sh and the
# health check), answered the way Gitea answers them:
#   GET  /api/healthz                   200
#   GET  /api/v1/repos/OWNER/REPO       200, or 404 when there is no such repository
#   POST /api/v1/user/repos {"name": "REPO", "default_branch": "main"}
#                                       201: a bare repository of the
#                                       authenticated user, which takes pushes;
#                                       409 if it exists, 401 if the user does not
# Everything else is a 404 saying the stand-in does not serve it. Passwords
# are not checked: the stand-in lives on the bed's private network.
set -eu
root=/data/git/repositories

reply() {
  printf 'Status: %s\r\nContent-Type: application/json\r\n\r\n%s\n' "$1" "$2"
  exit 0
}
# A user or repository name as Gitea allows them.
valid_name() { printf '%s' "$1" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9._-]*$'; }

path=${REQUEST_URI%%\?*}
case "$REQUEST_METHOD $path" in
  "GET /api/healthz")
    reply "200 OK" '{"status":"pass"}'
    ;;
  "GET /api/v1/repos/"*)
    rest=${path#/api/v1/repos/}
    owner=${rest%%/*}
    repo=${rest#*/}
    if valid_name "$owner" && valid_name "$repo" && [ -d "$root/$owner/$repo.git" ]; then
      reply "200 OK" "{\"name\":\"$repo\",\"full_name\":\"$owner/$repo\",\"owner\":{\"login\":\"$owner\"}}"
    fi
    reply "404 Not Found" '{"message":"The target couldn'\''t be found."}'
    ;;
  "POST /api/v1/user/repos")
    credentials=$(printf '%s' "${HTTP_AUTHORIZATION#Basic }" | base64 -d 2>/dev/null || true)
    user=${credentials%%:*}
    if [ -z "$user" ] || ! valid_name "$user" || [ ! -d "$root/$user" ]; then
      reply "401 Unauthorized" '{"message":"user does not exist"}'
    fi
    body=$(head -c "${CONTENT_LENGTH:-0}")
    field() { printf '%s' "$body" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p"; }
    name=$(field name)
    branch=$(field default_branch)
    valid_name "$name" || reply "422 Unprocessable Entity" '{"message":"name: a repository name is required"}'
    valid_name "${branch:=main}" || reply "422 Unprocessable Entity" '{"message":"default_branch: not a branch name"}'
    if [ -e "$root/$user/$name.git" ]; then
      reply "409 Conflict" '{"message":"The repository with the same name already exists."}'
    fi
    git init -q --bare -b "$branch" "$root/$user/$name.git" >&2
    git -C "$root/$user/$name.git" config http.receivepack true
    reply "201 Created" "{\"name\":\"$name\",\"full_name\":\"$user/$name\",\"default_branch\":\"$branch\",\"owner\":{\"login\":\"$user\"}}"
    ;;
esac
reply "404 Not Found" "{\"message\":\"the Gitea stand-in does not serve $REQUEST_METHOD $path\"}"
