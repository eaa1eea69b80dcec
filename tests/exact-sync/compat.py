"""EXACT's own Python client (exact-sync 0.0.41, unchanged) against a running Exact server.

Usage: compat.py URL PNG SVS
Drives teams, products, image sets, annotation types, uploads, annotations (one by one, as a
list, paged past 1,000), partial updates, verdicts, deletion, thumbnail, slide information and
the download, through the client's own API classes. Exits non-zero at the first difference.
"""
import filecmp
import sys
import tempfile
import uuid
from pathlib import Path

from exact_sync.v1.api.annotation_media_files_api import AnnotationMediaFilesApi
from exact_sync.v1.api.annotation_types_api import AnnotationTypesApi
from exact_sync.v1.api.annotations_api import AnnotationsApi
from exact_sync.v1.api.image_sets_api import ImageSetsApi
from exact_sync.v1.api.log_image_actions_api import LogImageActionsApi
from exact_sync.v1.api.screening_modes_api import ScreeningModesApi
from exact_sync.v1.api.set_tags_api import SetTagsApi
from exact_sync.v1.api.team_membership_api import TeamMembershipApi
from exact_sync.v1.api.images_api import ImagesApi
from exact_sync.v1.api.products_api import ProductsApi
from exact_sync.v1.api.teams_api import TeamsApi
from exact_sync.v1.api.users_api import UsersApi
from exact_sync.v1.api.verifications_api import VerificationsApi
from exact_sync.v1.api_client import ApiClient
from exact_sync.v1.configuration import Configuration
from exact_sync.v1.models import AnnotationType, ImageSet, Product, Team
from exact_sync.v1.models.annotation import Annotation
from exact_sync.v1.rest import ApiException

url, png, svs = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

configuration = Configuration()
configuration.username = "exact"
configuration.password = "exact"
configuration.host = url
client = ApiClient(configuration)

users = UsersApi(client)
teams = TeamsApi(client)
products = ProductsApi(client)
image_sets = ImageSetsApi(client)
types = AnnotationTypesApi(client)
images = ImagesApi(client)
annotations = AnnotationsApi(client)
verifications = VerificationsApi(client)
media_files = AnnotationMediaFilesApi(client)
memberships = TeamMembershipApi(client)
set_tags = SetTagsApi(client)
screenings = ScreeningModesApi(client)
access_log = LogImageActionsApi(client)


def refused(call, status):
    """Whether `call` raised the client's ApiException with HTTP `status`."""
    try:
        call()
    except ApiException as e:
        return e.status == status
    return False


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


me = users.list_users(username="exact").results[0]
check(me.username == "exact", "the default admin logs in with Basic auth")

team = teams.create_team(body=Team(name="Compat team"))
check(team.id > 0 and team.name == "Compat team", "a team is created with its name only")
image_set = image_sets.create_image_set(body=ImageSet(name="Compat set", team=team.id))
check(image_set.team == team.id, "an image set is created in the team")
product = products.create_product(
    body=Product(name="Compat product", team=team.id, imagesets=[image_set.id])
)
check(product.imagesets == [image_set.id], "a product is linked to the set")
box = types.create_annotation_type(
    body=AnnotationType(name="mitosis", product=product.id, vector_type=1)
)
check(box.vector_type == 1 and box.product == product.id, "an annotation type is created")
check(
    [t.id for t in types.list_annotation_types(product=product.id).results] == [box.id],
    "the type is listed by product",
)

uploaded = images.create_image(file_path=str(png), image_type=0, image_set=image_set.id).results
check(len(uploaded) == 1 and uploaded[0].width == 640 and uploaded[0].height == 480,
      "a PNG is uploaded and measured")
png_image = uploaded[0]
slide = images.create_image(file_path=str(svs), image_type=0, image_set=image_set.id).results[0]
check((slide.width, slide.height) == (4000, 3000) and slide.mpp and slide.mpp > 0,
      "a generated SVS is uploaded with its size and resolution")
listed = images.list_images(image_set=image_set.id).results
check(sorted(i.id for i in listed) == sorted([png_image.id, slide.id]), "the set lists both images")

first = annotations.create_annotation(
    body=Annotation(
        annotation_type=box.id,
        image=png_image.id,
        vector={"x1": 10, "y1": 20, "x2": 60, "y2": 80},
        unique_identifier=str(uuid.uuid4()),
    )
)
check(first.id > 0 and first.vector["x2"] == 60, "one annotation is created")
second = annotations.create_annotation(
    body=Annotation(annotation_type=box.id, image=png_image.id,
                    vector={"x1": 100, "y1": 100, "x2": 120, "y2": 140})
)
check(len(second.unique_identifier) == 36, "an annotation without a UUID gets one")

batch = []
for i in range(1100):
    x, y = (i % 50) * 12, (i // 50) * 20
    batch.append({"annotation_type": box.id, "image": slide.id,
                  "vector": {"x1": x, "y1": y, "x2": x + 10, "y2": y + 10},
                  "unique_identifier": str(uuid.uuid4())})
created = client.call_api(
    "/api/v1/annotations/annotations/", "POST", body=batch,
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True,
)
check(len(created) == 1100, "a list of 1,100 annotations is created in one request")

everything = annotations.list_annotations(pagination=False, image=slide.id)
check(everything.count == 1100 and len(everything.results) == 1100
      and len({a.id for a in everything.results}) == 1100,
      "pagination=False walks every page of 1,100 annotations")

changed = annotations.partial_update_annotation(
    first.id, vector={"x1": 12, "y1": 20, "x2": 60, "y2": 80}, description="checked")
check(changed.vector["x1"] == 12 and changed.description == "checked", "a partial update")
again = annotations.retrieve_annotation(first.id)
check(again.vector["x1"] == 12, "the update is read back")

# exact-sync 0.0.41's create_verification puts its fields in form parameters but sends them
# with a JSON content type, so its REST layer drops them and posts an empty body (against EXACT
# too). The same client call with the form content type the method lists second:
verdict = client.call_api(
    "/api/v1/annotations/verifications/", "POST",
    post_params=[("annotation", first.id), ("verified", True)],
    header_params={"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="Verification", _return_http_data_only=True,
)
check(verdict.annotation == first.id and verdict.verified is True, "a verification")
check(verifications.list_verifications(annotation=first.id).count == 1, "the verification is listed")

annotations.destroy_annotation(second.id)
check(annotations.retrieve_annotation(second.id).deleted is True, "deletion is a soft delete")
doomed = [a.id for a in everything.results[:3]]
annotations.multiple_delete(id__in=",".join(str(i) for i in doomed))
left = annotations.list_annotations(image=slide.id, deleted=False)
check(left.count == 1097, "multiple_delete deletes the listed annotations")

with tempfile.TemporaryDirectory() as tmp:
    thumbnail = Path(tmp) / "thumb.png"
    images.download_thumbnail(slide.id, thumbnail)
    check(thumbnail.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "the thumbnail is a PNG")
    info = images.get_slide_information(slide.id)
    check(info.levels >= 2 and info.level_downsamples[0] == 1.0, "slide information")
    for image, original in ((png_image, png), (slide, svs)):
        target = Path(tmp) / image.name
        status, _ = images.download_image(image.id, target, original_image=True)
        check(status == 200 and filecmp.cmp(target, original, shallow=False),
              f"the download of {image.name} is identical to the upload")

# Edits of descriptive fields and deletes, which EXACT accepts: each is an event here.
renamed_team = teams.partial_update_team(team.id, name="Compat team renamed")
check(renamed_team.name == "Compat team renamed", "partial_update_team renames the team")
corrected = images.partial_update_image(slide.id, objective_power=20.0, name=slide.name)
check(corrected.objective_power == 20.0, "partial_update_image corrects the objective power")
check(images.retrieve_image(slide.id).objective_power == 20.0,
      "the client's Image model reads objectivePower back")
check([i.id for i in images.list_images(objective_power__range="19,21").results] == [slide.id],
      "list_images filters by objectivePower__range")

attached = media_files.create_annotation_media_file(
    name="cell.png", media_file_type=2, file=str(png), annotation=first.id)
attached = attached.results[0] if hasattr(attached, "results") else attached
renamed_file = media_files.partial_update_annotation_media_file(attached.id, name="mitosis.png")
check(renamed_file.name == "mitosis.png", "partial_update_annotation_media_file renames the file")

lines = types.create_annotation_type(
    body=AnnotationType(name="lines", product=product.id, vector_type=3))
check(types.partial_update_annotation_type(lines.id, vector_type=4).vector_type == 4,
      "partial_update_annotation_type changes the vector type of a type without annotations")
check(refused(lambda: types.partial_update_annotation_type(box.id, vector_type=5), 409),
      "a vector type the type's boxes do not fit is refused with 409")
types.destroy_annotation_type(lines.id)
check([t.id for t in types.list_annotation_types(product=product.id).results] == [box.id],
      "destroy_annotation_type takes the type out of the list")
check(refused(lambda: types.retrieve_annotation_type(lines.id), 404),
      "a deleted type answers 404")

spare_product = products.create_product(body=Product(name="Spare", team=team.id, imagesets=[]))
products.destroy_product(spare_product.id)
check(spare_product.id not in [p.id for p in products.list_products().results],
      "destroy_product takes the product out of the list")
spare_team = teams.create_team(body=Team(name="Spare team"))
teams.destroy_team(spare_team.id)
check(refused(lambda: teams.retrieve_team(spare_team.id), 404), "destroy_team: the team answers 404")

# Every model of the client reads our JSON key for key: each key of its attribute_map is in
# the answer of the resource it models.
from exact_sync.v1 import models  # noqa: E402


def raw(path):
    return client.call_api(
        path, "GET", header_params={"Accept": "application/json"}, auth_settings=["basicAuth"],
        response_type="object", _return_http_data_only=True)


membership = raw(f"/api/v1/users/team_membership/?team={team.id}")["results"][0]
tag = client.call_api(
    "/api/v1/images/set_tags/", "POST", body={"name": "compat", "imagesets": [image_set.id]},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True)
logged = client.call_api(
    "/api/v1/annotations/log_image_actions/", "POST", body={"image": slide.id, "action": 1},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True)
screening = client.call_api(
    "/api/v1/images/screening_modes/", "POST",
    body={"image": slide.id, "x_resolution": 1000, "y_resolution": 1000},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True)
shapes = {
    models.Team: f"/api/v1/users/teams/{team.id}/",
    models.User: f"/api/v1/users/users/{me.id}/",
    models.TeamMembership: f"/api/v1/users/team_membership/{membership['id']}/",
    models.ImageSet: f"/api/v1/images/image_sets/{image_set.id}/",
    models.Image: f"/api/v1/images/images/{slide.id}/",
    models.SlideInformation: f"/api/v1/images/images/{slide.id}/slide_information/",
    models.SetTag: f"/api/v1/images/set_tags/{tag['id']}/",
    models.ScreeningMode: f"/api/v1/images/screening_modes/{screening['id']}/",
    models.Product: f"/api/v1/administration/products/{product.id}/",
    models.AnnotationType: f"/api/v1/annotations/annotation_types/{box.id}/",
    models.Annotation: f"/api/v1/annotations/annotations/{first.id}/",
    models.Verification: f"/api/v1/annotations/verifications/{verdict.id}/",
    models.AnnotationMediaFile: f"/api/v1/annotations/annotation_media_files/{attached.id}/",
    models.LogImageAction: f"/api/v1/annotations/log_image_actions/{logged['id']}/",
}
for model, path in shapes.items():
    answer = raw(path)
    missing = sorted(set(model.attribute_map.values()) - set(answer))
    check(not missing, f"{model.__name__} finds every key it reads in {path}: missing {missing}")

# Every other method of the API classes EXACT's 2021 server routes. Methods whose generated
# code puts their fields in form parameters but sends them with a JSON content type post an
# empty body (against EXACT too: a bug of the client); those are called through the client's
# own call_api with the form content type the method lists second.
def form(path, method, fields, response_type="object"):
    return client.call_api(
        path, method, post_params=list(fields.items()),
        header_params={"Content-Type": "application/x-www-form-urlencoded",
                       "Accept": "application/json"},
        auth_settings=["basicAuth"], response_type=response_type, _return_http_data_only=True)


# users
made = form("/api/v1/users/users/", "POST", {"username": "sync-user", "password": "sync-pw-1"})
check(made["username"] == "sync-user", "create_user (as a form)")
check(users.retrieve_user(made["id"]).username == "sync-user", "retrieve_user")
check(users.list_users(username="sync-user").count == 1, "list_users by username")
form(f"/api/v1/users/users/{made['id']}/", "PATCH", {"is_staff": "true"})
check(users.retrieve_user(made["id"]).is_staff is True, "partial_update_user (as a form)")
form(f"/api/v1/users/users/{made['id']}/", "PUT", {"username": "sync-user", "is_staff": "false"})
check(users.retrieve_user(made["id"]).is_staff is False, "update_user (as a form)")

# team memberships
joined = form("/api/v1/users/team_membership/", "POST", {"team": team.id, "user": made["id"]})
check(joined["team"] == team.id and joined["user"] == made["id"], "create_team_membership")
check(memberships.retrieve_team_membership(joined["id"]).is_admin is False,
      "retrieve_team_membership")
check(memberships.list_team_memberships(team=team.id).count == 2, "list_team_memberships")
form(f"/api/v1/users/team_membership/{joined['id']}/", "PATCH", {"is_admin": "true"})
check(memberships.retrieve_team_membership(joined["id"]).is_admin is True,
      "partial_update_team_membership: admin granted")
form(f"/api/v1/users/team_membership/{joined['id']}/", "PUT",
     {"team": team.id, "user": made["id"], "is_admin": "false"})
check(memberships.retrieve_team_membership(joined["id"]).is_admin is False,
      "update_team_membership: admin revoked")
memberships.destroy_team_membership(joined["id"])
check(memberships.list_team_memberships(team=team.id).count == 1, "destroy_team_membership")
users.destroy_user(made["id"])
check(users.retrieve_user(made["id"]).is_active is False, "destroy_user deactivates the account")

# teams
check(teams.update_team(team.id, body=Team(name="Compat team")).name == "Compat team",
      "update_team")
check([t.id for t in teams.list_teams(name="Compat team").results] == [team.id], "list_teams")
check(teams.retrieve_team(team.id).name == "Compat team", "retrieve_team")

# image sets
check(image_sets.partial_update_image_set(image_set.id, description="slides").description
      == "slides", "partial_update_image_set")
check(image_sets.update_image_set(
    image_set.id, body=ImageSet(name="Compat set", team=team.id, description="all")).description
      == "all", "update_image_set")
check(image_sets.retrieve_image_set(image_set.id).name == "Compat set", "retrieve_image_set")
check(image_sets.list_image_sets(team=team.id).count == 1, "list_image_sets")
spare_set = image_sets.create_image_set(body=ImageSet(name="Spare set", team=team.id))
image_sets.destroy_image_set(spare_set.id)
check(image_sets.list_image_sets(team=team.id).count == 1, "destroy_image_set")
check(refused(lambda: image_sets.list_server(), 400),
      "list_server: EXACT's 2021 server has no such route either (it reads list_server as a set "
      "id there and answers 404; here an id that is not a number is a 400)")

# images
patch = images.get_patch(slide.id, x=0, y=0, level=0, width=64, height=48)
check(patch.format == "PNG" and patch.size == (64, 48), "get_patch is a 64 x 48 PNG")
cached = client.call_api(
    f"/api/v1/images/images/{slide.id}/update_image_cache/", "PATCH", body={"mem_size_mb": 1},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True)
check(cached["0"]["Total"] >= 1, "update_image_cache renders tiles into the cache")
images.update_image_cache(slide.id, mem_size_mb=1)
try:
    images.update_image(png_image.id, body={"name": "renamed.png"})
    check(False, "update_image raises NotImplementedError in the client itself")
except NotImplementedError:
    pass
renamed_image = client.call_api(
    f"/api/v1/images/images/{png_image.id}/", "PUT", body={"name": "renamed.png"},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="Image", _return_http_data_only=True)
check(renamed_image.name == "renamed.png",
      "update_image (the client's method is not implemented; its PUT through call_api)")
check(images.list_images(name="renamed.png").count == 1, "list_images by name")
check(refused(lambda: images.index_image(image_set=image_set.id, name="x.png"), 405),
      "index_image: EXACT's 2021 server has no such route either (a POST to an image's own "
      "path: 405 there as here)")

# products and types
check(products.partial_update_product(product.id, description="cells").description == "cells",
      "partial_update_product")
check(products.update_product(product.id, body=Product(
    name="Compat product", team=team.id, imagesets=[image_set.id])).name == "Compat product",
      "update_product")
check(products.retrieve_product(product.id).imagesets == [image_set.id], "retrieve_product")
check(products.list_products(team=team.id).count >= 1, "list_products")
check(types.update_annotation_type(box.id, body=AnnotationType(
    name="mitosis figure", product=product.id, vector_type=1)).name == "mitosis figure",
      "update_annotation_type")
check(types.retrieve_annotation_type(box.id).name == "mitosis figure", "retrieve_annotation_type")

# annotations
put = annotations.update_annotation(first.id, body=Annotation(
    annotation_type=box.id, image=png_image.id, vector={"x1": 14, "y1": 20, "x2": 60, "y2": 80},
    unique_identifier=first.unique_identifier))
check(put.vector["x1"] == 14, "update_annotation")
check(annotations.list_annotations(id=first.id).count == 1, "list_annotations by id")

# verifications: change and take back one's own verdict
changed_verdict = form(f"/api/v1/annotations/verifications/{verdict.id}/", "PATCH",
                       {"verified": "false"})
check(changed_verdict["verified"] is False, "partial_update_verification (as a form)")
again_verdict = form(f"/api/v1/annotations/verifications/{changed_verdict['id']}/", "PUT",
                     {"annotation": first.id, "verified": "true"})
check(again_verdict["verified"] is True, "update_verification (as a form)")
check(verifications.retrieve_verification(again_verdict["id"]).verified is True,
      "retrieve_verification")
verifications.destroy_verification(again_verdict["id"])
check(verifications.list_verifications(annotation=first.id).count == 0,
      "destroy_verification takes the verdict back")

# media files
check(media_files.retrieve_annotation_media_file(attached.id).name == "mitosis.png",
      "retrieve_annotation_media_file")
check(media_files.list_annotation_media_files(annotation=first.id).count == 1,
      "list_annotation_media_files")
try:
    media_files.update_annotation_media_file(attached.id, body={"name": "cell.png"})
    check(False, "update_annotation_media_file fails in the client itself (NameError)")
except NameError:
    pass
renamed_media = client.call_api(
    f"/api/v1/annotations/annotation_media_files/{attached.id}/", "PUT", body={"name": "cell.png"},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True)
check(renamed_media["name"] == "cell.png",
      "update_annotation_media_file (the client's method raises NameError; its PUT through "
      "call_api)")
media_files.destroy_annotation_media_file(attached.id)
check(media_files.list_annotation_media_files(annotation=first.id).count == 0,
      "destroy_annotation_media_file")

# set tags
tagged = set_tags.create_set_tag(body={"name": "sync", "imagesets": [image_set.id]})
check(tagged.name == "sync", "create_set_tag")
# The client has retrieve_set_tag_with_http_info only (its plain method is missing).
check(set_tags.retrieve_set_tag_with_http_info(tagged.id)[0].imagesets == [image_set.id],
      "retrieve_set_tag_with_http_info")
check(set_tags.list_set_tags(name="sync").count == 1, "list_set_tags")
renamed_tag = set_tags.partial_update_set_tag(tagged.id, name="synced")
check(renamed_tag.name == "synced", "partial_update_set_tag")
check(set_tags.update_set_tag(renamed_tag.id, body={"name": "synced", "imagesets": [
    image_set.id]}).imagesets == [image_set.id], "update_set_tag")
set_tags.destroy_set_tag(renamed_tag.id)
check(set_tags.list_set_tags(name="synced").count == 0, "destroy_set_tag")
unused = set_tags.create_set_tag(body={"name": "unused", "imagesets": [image_set.id]})
check(set_tags.update_set_tag(unused.id, body={"name": "unused", "imagesets": []}).imagesets == [],
      "update_set_tag to no set (the tag is then on none, so in no list)")

# screening modes
walk = form("/api/v1/images/screening_modes/", "POST",
            {"image": png_image.id, "x_resolution": 100, "y_resolution": 100})
check(screenings.retrieve_screening_mode(walk["id"]).image == png_image.id,
      "create_screening_mode (as a form) and retrieve_screening_mode")
check(screenings.list_screening_modes(image=png_image.id).count == 1, "list_screening_modes")
form(f"/api/v1/images/screening_modes/{walk['id']}/", "PATCH", {"x_steps": 3})
check(screenings.retrieve_screening_mode(walk["id"]).x_steps == 3,
      "partial_update_screening_mode (as a form)")
form(f"/api/v1/images/screening_modes/{walk['id']}/", "PUT",
     {"image": png_image.id, "x_steps": 4})
check(screenings.retrieve_screening_mode(walk["id"]).x_steps == 4,
      "update_screening_mode (as a form)")
screenings.destroy_screening_mode(walk["id"])
check(screenings.list_screening_modes(image=png_image.id).count == 0, "destroy_screening_mode")

# the access log
entry = form("/api/v1/annotations/log_image_actions/", "POST",
             {"image": png_image.id, "action": 1})
check(access_log.retrieve_log_image_action(entry["id"]).action == 1,
      "create_log_image_action (as a form) and retrieve_log_image_action")
check(access_log.list_log_image_actions(image=png_image.id).count >= 1, "list_log_image_actions")
form(f"/api/v1/annotations/log_image_actions/{entry['id']}/", "PATCH", {"action": 2})
check(access_log.retrieve_log_image_action(entry["id"]).action == 2,
      "partial_update_log_image_action (as a form)")
form(f"/api/v1/annotations/log_image_actions/{entry['id']}/", "PUT",
     {"image": png_image.id, "action": 1})
check(access_log.retrieve_log_image_action(entry["id"]).action == 1,
      "update_log_image_action (as a form)")
access_log.destroy_log_image_action(entry["id"])
check(refused(lambda: access_log.retrieve_log_image_action(entry["id"]), 404),
      "destroy_log_image_action")

images.destroy_image(png_image.id)
check(refused(lambda: images.retrieve_image(png_image.id), 404), "destroy_image")

print("exact-sync compatibility: all checks passed")
