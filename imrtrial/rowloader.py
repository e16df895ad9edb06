"""One row and the rows its foreign keys point to, read by SQL written once per process.

Django compiles a queryset's SQL on every call: for a participant with their trial and site
(`select_related`), that compilation cost more CPU than the rest of loading them (measured for
issue 17: 0.44 ms of 1.21 ms of a randomization at the phone desk). A RowLoader writes the same
SELECT once, from the models' own metadata (tables, columns, the converters Django applies to
what PostgreSQL returns), and builds the instances as the ORM would (Model.from_db, the related
instances cached on the row), so the objects it returns are indistinguishable from
`Model.objects.select_related(...).get(...)`'s.

For the hot paths only, where a profile shows the compilation: everywhere else the ORM's
queryset stays the way to read.
"""

from django.db import connection


class RowLoader:
    """`RowLoader(Participant, related=("trial", "site"), where=("trial__key", "participant_id"))`
    then `.get(trial__key=..., participant_id=...)`: the participant with `.trial` and `.site`
    already there, or None.

    `related` names foreign keys of the main model, or of a model named before it, as a path:
    `("participant", "participant__site")` loads a visit's participant and the participant's
    site; the other side of a one-to-one field may be named too (a screening's `identifying`).
    A foreign key that may be empty, or the other side of a one-to-one, is joined LEFT, and an
    empty one is cached as None, as select_related does. `where` names the main model's
    columns, or a related model's as `<path>__<column>`, each equal to its value, or compared
    to it with a last `__gt`, `__gte`, `__lt` or `__lte`."""

    _COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

    def __init__(self, model, *, related=(), where=("pk",)):
        self.model, self.related, self.where = model, tuple(related), tuple(where)
        self._sql = None

    def _compile(self):
        quote = connection.ops.quote_name
        # (model, alias, the foreign key it is reached by, the index of the row it hangs on)
        tables = [(self.model, "m0", None, None)]
        joins = []
        for i, path in enumerate(self.related, 1):
            parent, _sep, name = path.rpartition("__")
            parent_index = self.related.index(parent) + 1 if parent else 0
            parent_model, parent_alias = tables[parent_index][:2]
            field = parent_model._meta.get_field(name)
            target = field.related_model
            alias = f"m{i}"
            tables.append((target, alias, field, parent_index))
            if field.one_to_one and not field.concrete:  # the other side of a one-to-one
                joins.append(
                    f"LEFT JOIN {quote(target._meta.db_table)} {alias} ON "
                    f"{alias}.{quote(field.field.column)} = "
                    f"{parent_alias}.{quote(field.field.target_field.column)}"
                )
                continue
            joins.append(
                f"{'LEFT JOIN' if field.null else 'JOIN'} {quote(target._meta.db_table)} "
                f"{alias} ON {alias}.{quote(target._meta.pk.column)} = "
                f"{parent_alias}.{quote(field.column)}"
            )
        columns, self._parts = [], []
        for model, alias, field, parent_index in tables:
            fields = list(model._meta.concrete_fields)
            converters = [self._converters(f, alias) for f in fields]
            pk_at = fields.index(model._meta.pk)
            self._parts.append(
                (model, field, parent_index, pk_at, [f.attname for f in fields], converters)
            )
            columns += [f"{alias}.{quote(f.column)}" for f in fields]
        conditions = []
        for name in self.where:
            column, _sep, lookup = name.rpartition("__")
            if lookup not in self._COMPARISONS:
                column, lookup = name, None
            conditions.append(f"{self._column(column)} {self._COMPARISONS.get(lookup, '=')} %s")
        self._sql = (
            f"SELECT {', '.join(columns)} FROM {quote(self.model._meta.db_table)} m0 "
            f"{' '.join(joins)} WHERE {' AND '.join(conditions)}"
        )

    def _column(self, name):
        quote = connection.ops.quote_name
        path, _sep, column = name.rpartition("__")
        if not path:
            field = self.model._meta.pk if name == "pk" else self.model._meta.get_field(name)
            return f"m0.{quote(field.column)}"
        model = self.model
        for step in path.split("__"):
            model = model._meta.get_field(step).related_model
        alias = f"m{self.related.index(path) + 1}"
        return f"{alias}.{quote(model._meta.get_field(column).column)}"

    @staticmethod
    def _converters(field, alias):
        """(the column as an expression, the converters the compiler would apply to it)."""
        expression = field.get_col(alias)
        return expression, (
            connection.ops.get_db_converters(expression) + field.get_db_converters(connection)
        )

    def get(self, **values):
        if self._sql is None:
            self._compile()
        with connection.cursor() as cursor:
            # The values go to the driver as given, not through the fields' get_db_prep_value:
            # right for what the callers pass on PostgreSQL (ints, strings, an aware datetime).
            cursor.execute(self._sql, [values[name] for name in self.where])
            row = cursor.fetchone()
        if row is None:
            return None
        instances, start = [], 0
        for model, field, parent_index, pk_at, names, converters in self._parts:
            raw = row[start : start + len(names)]
            start += len(names)
            parent = instances[parent_index] if parent_index is not None else None
            if raw[pk_at] is None or (field is not None and parent is None):
                instance = None  # an empty foreign key (LEFT JOIN), or one of its rows
            else:
                converted = []
                for value, (expression, chain) in zip(raw, converters, strict=True):
                    for convert in chain:
                        value = convert(value, expression, connection)
                    converted.append(value)
                instance = model.from_db(connection.alias, names, converted)
            if field is not None and parent is not None:
                field.set_cached_value(parent, instance)
                if instance is not None and field.one_to_one:  # either side knows the other
                    other = field.field if not field.concrete else field.remote_field
                    other.set_cached_value(instance, parent)
            instances.append(instance)
        return instances[0]


class CompiledOnce:
    """A queryset whose SQL is written once per process and run again with another value of one
    of its parameters: `CompiledOnce(lambda pk: users.filter(pk=pk))`, then `.first(pk)`.

    For a query asked on every request whose queryset is costly to compile (the signed-in user
    with their annotations: 3.5 of the 4 ms of CPU its read took, issue 17). The queryset is
    built once with a stand-in value, its SQL and parameters kept, and each call runs that SQL
    through `raw()` with the stand-in replaced: the model's fields get the ORM's converters and
    the annotations come as attributes, as from the queryset itself."""

    _STAND_IN = -1_946_382_017  # no primary key or parameter takes it; within a 32-bit integer

    def __init__(self, build):
        self.build = build
        self._compiled = None

    def _compile(self):
        queryset = self.build(self._STAND_IN)
        sql, params = queryset.query.sql_with_params()
        at = [i for i, value in enumerate(params) if value == self._STAND_IN]
        if len(at) != 1:
            raise ValueError("the stand-in value must appear exactly once among the parameters")
        self._compiled = (queryset.model, sql, list(params), at[0])

    def first(self, value):
        """The first row for `value`, or None."""
        if self._compiled is None:
            self._compile()
        model, sql, params, at = self._compiled
        params = params.copy()
        params[at] = value
        return next(iter(model._default_manager.raw(sql, params)), None)
