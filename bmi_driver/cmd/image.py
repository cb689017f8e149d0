# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""``bmi-manage image ...``: the golden-image library from the shell."""

from cliff import command
from cliff import lister
from cliff import show

from bmi_driver.cmd import progress as progress_bar
from bmi_driver.storage.ceph import library
from bmi_driver.storage import names

_FIELDS = ('uuid', 'name', 'project', 'visibility', 'size', 'parent',
           'clones', 'created_at', 'source', 'checksum')


def _show(img):
    return _FIELDS, tuple(getattr(img, f) for f in _FIELDS)


def _with_progress(label, fn, *args, **kwargs):
    bar = progress_bar.ProgressBar(label)
    try:
        return fn(*args, progress=bar, **kwargs)
    finally:
        bar.close()


class ImportImage(show.ShowOne):
    """Import a raw or qcow2 file, or an RBD image/snapshot by reference."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('name', help='Name of the new golden image.')
        src = parser.add_mutually_exclusive_group(required=True)
        src.add_argument('--file', metavar='PATH',
                         help='Local raw or qcow2 file (streamed).')
        src.add_argument('--rbd', metavar='POOL/IMAGE[@SNAP]',
                         help='Existing RBD image or snapshot, e.g. a '
                              'Glance image <pool>/<uuid>@snap (no copy).')
        parser.add_argument('--project', help='Owning project.')
        parser.add_argument('--visibility', default='private',
                            choices=names.VISIBILITIES)
        return parser

    def take_action(self, args):
        lib = library.ImageLibrary()
        if args.file:
            img = _with_progress('import', lib.import_file, args.file,
                                 args.name, project=args.project,
                                 visibility=args.visibility)
        else:
            img = lib.import_rbd(args.rbd, args.name, project=args.project,
                                 visibility=args.visibility)
        return _show(img)


class ListImages(lister.Lister):
    """List golden images."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--project', help='Only this project\'s images.')
        parser.add_argument('--include-public', action='store_true',
                            help='With --project: public images too.')
        return parser

    def take_action(self, args):
        columns = ('uuid', 'name', 'project', 'visibility', 'size',
                   'parent', 'clones')
        rows = library.ImageLibrary().list(
            project=args.project, include_public=args.include_public)
        return columns, [tuple(getattr(i, c) for c in columns) for i in rows]


class _OneImage(show.ShowOne):

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', help='Image name or UUID.')
        return parser


class ShowImage(_OneImage):
    """Show a golden image."""

    def take_action(self, args):
        return _show(library.ImageLibrary().get(args.image))


class ExportImage(_OneImage):
    """Write a golden image to a local raw file (checksum verified)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('path', help='File to create.')
        return parser

    def take_action(self, args):
        return _show(_with_progress('export', library.ImageLibrary().export,
                                    args.image, args.path))


class CopyImage(_OneImage):
    """Make a full, independent copy of a golden image."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('new_name', help='Name of the copy.')
        parser.add_argument('--project', help='Owner of the copy.')
        parser.add_argument('--visibility', choices=names.VISIBILITIES)
        return parser

    def take_action(self, args):
        return _show(_with_progress('copy', library.ImageLibrary().copy,
                                    args.image, args.new_name,
                                    project=args.project,
                                    visibility=args.visibility))


class RenameImage(_OneImage):
    """Rename a golden image (its UUID stays)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('new_name', help='New name.')
        return parser

    def take_action(self, args):
        return _show(library.ImageLibrary().rename(args.image, args.new_name))


class DeleteImage(command.Command):
    """Delete a golden image (refused while nodes use clones of it)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image', help='Image name or UUID.')
        return parser

    def take_action(self, args):
        library.ImageLibrary().delete(args.image)


class SweepGlanceCache(lister.Lister):
    """Drop converted copies of images Glance no longer has.

    A copy that nodes still clone stays until they are torn down.
    """

    def take_action(self, args):
        lib = library.ImageLibrary()
        dropped = lib.sweep_glance_cache()
        kept = lib.list_glance_cache()
        return (('glance_image', 'cache'),
                [(i, 'dropped') for i in dropped]
                + [(i, 'kept') for i in kept])


class SweepPublished(lister.Lister):
    """Make golden images and their Glance records agree.

    A golden image whose Glance record is gone forgets it (bmi keeps the
    bytes); a record of a golden image that is gone is deleted; a Glance
    image that claims a golden image which does not name it is not bmi's
    and is left ("left"); with [glance] publish_images, unpublished golden
    images are published.
    """

    def take_action(self, args):
        result = library.ImageLibrary().sweep_published()
        rows = ([(i, '', 'forgotten') for i in result['forgotten']]
                + [('', g, 'deleted') for g in result['deleted']]
                + [(i, '', 'published') for i in result['published']]
                + [('', g, 'left') for g in result['left']])
        return (('image', 'glance_image', 'action'), rows)
