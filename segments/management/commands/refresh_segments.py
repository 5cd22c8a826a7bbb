"""python manage.py refresh_segments [ID ...]: refresh rule segments now, with progress."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from segments.models import RefreshRun, Segment
from segments.services import segment_refresh, segments_in_dependency_order


class Command(BaseCommand):
    help = "Refresh segments (all rule segments, or the given ids) in dependency order."

    def add_arguments(self, parser):
        parser.add_argument(
            "ids", nargs="*", type=int, help="segment ids (default: all rule segments)"
        )

    def handle(self, *args, ids, **options):
        segments = Segment.objects.filter(kind=Segment.Kind.RULE)
        if ids:
            segments = Segment.objects.filter(pk__in=ids)
            missing = sorted(set(ids) - set(segments.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"no segment with id {', '.join(map(str, missing))}")
        ordered = segments_in_dependency_order(list(segments))
        failed = 0
        bar = tqdm(ordered, unit="segment", disable=options["verbosity"] == 0, file=self.stderr)
        for segment in bar:
            bar.set_description(segment.name[:30])
            try:
                run = segment_refresh(segment=segment, trigger=RefreshRun.Trigger.COMMAND)
            except Exception as exc:  # one broken segment must not stop the others
                failed += 1
                self.stderr.write(f"{segment.name} (#{segment.pk}): {exc}")
                continue
            bar.write(
                f"{segment.name} (#{segment.pk}): {run.size} members, +{run.joined} -{run.left}, "
                f"{run.duration.total_seconds():.2f}s"
            )
        if failed:
            raise CommandError(f"{failed} segment(s) failed to refresh")
