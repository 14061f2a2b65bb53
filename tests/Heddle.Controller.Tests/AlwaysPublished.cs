using Heddle.Controller.Publishing;

namespace Heddle.Controller.Tests;

/// <summary>A publication barrier whose data planes have always been told: passes never wait on it.</summary>
internal sealed class AlwaysPublished : IPublicationBarrier
{
    public bool Published() => true;
}
