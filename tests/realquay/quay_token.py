# Mints or revokes an OAuth access token of the real Quay's super user, as an admin would in Quay's UI.
#   quay_token.py mint            prints a new token (all scopes, valid one day)
#   quay_token.py mint-user <u>   the same for user <u>, a plain (not super) user made when missing,
#                                 with every scope but super:user: someone who administers nothing
#   quay_token.py revoke <token>  deletes it; Quay then treats it as no token
# Runs with Quay's venv Python, in Quay's source tree, with REALQUAY_DIR set (see mod.ts).
import logging
import os
import sys

logging.disable(logging.CRITICAL)
sys.path.insert(0, os.path.join(os.environ["REALQUAY_DIR"], "quay"))
from app import app  # noqa: E402,F401
from data import model  # noqa: E402
from data.database import OAuthAccessToken  # noqa: E402
from data.model.oauth import ACCESS_TOKEN_PREFIX_LENGTH  # noqa: E402

SCOPE = "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read"

if sys.argv[1] == "mint":
    user = model.user.get_user("quayadmin")
    _, token = model.oauth.create_user_access_token(user, "quayadmin", SCOPE, expires_in=86400)
    print(token)
elif sys.argv[1] == "mint-user":
    name = sys.argv[2]
    user = model.user.get_user(name) or model.user.create_user_noverify(
        name, f"{name}@example.com", email_required=False
    )
    scope = " ".join(s for s in SCOPE.split() if s != "super:user")
    _, token = model.oauth.create_user_access_token(user, "quayadmin", scope, expires_in=86400)
    print(token)
elif sys.argv[1] == "revoke":
    name = sys.argv[2][:ACCESS_TOKEN_PREFIX_LENGTH]
    print(OAuthAccessToken.delete().where(OAuthAccessToken.token_name == name).execute())
else:
    sys.exit("usage: quay_token.py mint | mint-user <name> | revoke <token>")
